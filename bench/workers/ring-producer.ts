/**
 * A producer thread of the ring data-path benchmark (bench/suites/ring-path.ts). It pushes
 * `count` 16-byte records per round into one of three rings, all on SharedArrayBuffers:
 *  - `dirtyring`: this vCPU's KVM dirty ring, through DirtyRing.push (kvm_dirty_ring_push);
 *    when a push reports soft-full the producer stops, as the vCPU would exit with
 *    KVM_EXIT_DIRTY_RING_FULL, until userspace's harvest + KVM_RESET_DIRTY_RINGS frees space;
 *  - `ringbuf`: a ringbuf.js RingBuffer of Uint32, one 4-element record per push() call;
 *  - `flags`: the minimal own ring with a per-entry flag word (0 free, 1 full).
 * Rounds are driven through a shared control block; the producer blocks between rounds.
 */
import { workerData } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import type { DirtyRing } from '../../src/kernel/dirty-ring.js';
import { Vm } from '../../src/kernel/vm.js';
import { Backoff, waitWhileEqual } from '../lib/timing.js';
import { Ctl, type ProducerData } from './ring-protocol.js';

const data = workerData as ProducerData;
const ctl = new Int32Array(data.control);
const backoff = new Backoff(`ring producer ${data.mode} #${data.index}: ring stays full`);
const pushOne = makeProducer(data);

let round = 0;
try {
  for (;;) {
    waitWhileEqual(ctl, Ctl.ROUND, round, 600_000, `ring producer ${data.mode} #${data.index}: waiting for a round`);
    round = Atomics.load(ctl, Ctl.ROUND);
    if (round < 0) break;
    const count = Atomics.load(ctl, Ctl.COUNT);
    let page = 0;
    for (let k = 0; k < count; k++) {
      pushOne(data.firstPage + page);
      if (++page === data.pageSpan) page = 0;
    }
    Atomics.add(ctl, Ctl.DONE, 1);
    Atomics.notify(ctl, Ctl.DONE);
  }
} catch (e) {
  Atomics.store(ctl, Ctl.FAILED, 1);
  Atomics.add(ctl, Ctl.DONE, 1);
  Atomics.notify(ctl, Ctl.DONE);
  throw e;
}

function makeProducer(d: ProducerData): (offset: number) => void {
  switch (d.mode) {
    case 'dirtyring': {
      const vm = Vm.attach(d.vm!);
      const ring: DirtyRing = vm.ring(d.index)!;
      const slot = d.slot;
      return (offset) => {
        if (ring.push(slot, offset, 0)) {
          // Soft-full: the vCPU would exit and stay out until a reset brings used below the limit.
          while (ring.isSoftFull()) backoff.idle();
          backoff.progress();
        }
      };
    }
    case 'ringbuf': {
      const rb = new RingBuffer(d.ring!, Uint32Array);
      const rec = new Uint32Array(4);
      rec[1] = d.slot;
      return (offset) => {
        rec[0] = 1;
        rec[2] = offset;
        let written = rb.push(rec, 4, 0);
        while (written < 4) {
          backoff.idle();
          written += rb.push(rec, 4 - written, written);
        }
        backoff.progress();
      };
    }
    case 'flags': {
      const i32 = new Int32Array(d.ring!);
      const mask = i32.length / 4 - 1;
      const slot = d.slot;
      let head = 0;
      return (offset) => {
        const e = (head & mask) << 2;
        while (Atomics.load(i32, e) !== 0) backoff.idle();
        backoff.progress();
        i32[e + 1] = slot;
        i32[e + 2] = offset;
        i32[e + 3] = 0;
        Atomics.store(i32, e, 1);
        head = (head + 1) | 0;
      };
    }
  }
}
