/**
 * 1. Ring data path: entries/s through push → harvest → reset with 1, 2 and 4 producer threads,
 * against ringbuf.js and a minimal own per-entry-flags ring moving the same number of records.
 *
 * dirtyring: each worker thread is one vCPU's kernel side and pushes with DirtyRing.push
 * (kvm_dirty_ring_push; it stops at soft-full until a reset, as the vCPU would stall on exit
 * 31); the main thread is userspace: harvestRing over every ring, then Vm.resetDirtyRings
 * (the walk, the coalesced re-protection under mmu_lock, the remote TLB flush request).
 * ringbuf.js: one SPSC RingBuffer(Uint32) per producer, a 4-element record per push(); the main
 * thread pops up to 4096 records at a time. flags: one own ring per producer, entry = flag word
 * + 3 payload words, the consumer clears the flag. Every ring holds 4096 records; every mode
 * uses the same full/empty back-off; each round's record count and offset checksum are checked.
 */
import { RingBuffer } from 'ringbuf.js';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL } from '../../src/abi/constants.js';
import { type RingViews } from '../../src/abi/dirty-gfn.js';
import { type HarvestCursor, harvestRing } from '../../src/kernel/dirty-ring.js';
import { Vm } from '../../src/kernel/vm.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { summarize } from '../lib/stats.js';
import { Backoff, BenchTimeoutError, now } from '../lib/timing.js';
import { type BenchWorker, endBenchWorker, spawnBenchWorker } from '../lib/workers.js';
import { Ctl, type ProducerData, type RingMode } from '../workers/ring-protocol.js';

const RING_ENTRIES = 4096;
const SLOT_PAGES = 16384;
const SLOT_ID = 1;
const MODES: readonly RingMode[] = ['dirtyring', 'ringbuf', 'flags'];

interface ModeSetup {
  readonly mode: RingMode;
  readonly ctl: Int32Array;
  readonly workers: BenchWorker[];
  /** Drain every ring once; returns records consumed, adds offsets to `checksum`. */
  consume(): number;
}

let checksum = 0;
const sumSink = (_slot: number, offLo: number, _offHi: number): void => {
  checksum += offLo;
};

async function setupMode(mode: RingMode, producers: number): Promise<ModeSetup> {
  const control = new SharedArrayBuffer(Ctl.WORDS * 4);
  const ctl = new Int32Array(control);
  const span = SLOT_PAGES / producers;
  const datas: ProducerData[] = [];
  let consume: () => number;
  if (mode === 'dirtyring') {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, RING_ENTRIES * 16);
    const slot = vm.createMemslot({ id: SLOT_ID, baseGfn: 1 << 18, pageCount: SLOT_PAGES, logDirty: true });
    for (let i = 0; i < producers; i++) vm.createVcpu();
    const buffers = vm.buffers();
    for (let i = 0; i < producers; i++) {
      datas.push({ mode, index: i, control, vm: buffers, slot: slot.encodedSlot, firstPage: i * span, pageSpan: span });
    }
    const views: RingViews[] = [];
    const cursors: HarvestCursor[] = [];
    for (let i = 0; i < producers; i++) {
      views.push(vm.mmapRing(i));
      cursors.push({ fetchIndex: 0 });
    }
    consume = () => {
      let n = 0;
      for (let i = 0; i < producers; i++) n += harvestRing(views[i]!, cursors[i]!, RING_ENTRIES, sumSink);
      if (n > 0) {
        const reset = vm.resetDirtyRings();
        if (reset !== n) throw new Error(`ring path: reset consumed ${reset} entries, ${n} were harvested`);
      }
      return n;
    };
  } else if (mode === 'ringbuf') {
    const rbs: RingBuffer[] = [];
    for (let i = 0; i < producers; i++) {
      const sab = RingBuffer.getStorageForCapacity(RING_ENTRIES * 4, Uint32Array);
      rbs.push(new RingBuffer(sab, Uint32Array));
      datas.push({ mode, index: i, control, ring: sab, slot: SLOT_ID, firstPage: i * span, pageSpan: span });
    }
    const buf = new Uint32Array(RING_ENTRIES * 4);
    // The stream is whole records per producer, but a pop may end mid-record.
    const phase = new Int32Array(producers);
    consume = () => {
      let records = 0;
      for (let i = 0; i < producers; i++) {
        const got = rbs[i]!.pop(buf, buf.length, 0);
        let ph = phase[i]!;
        for (let k = 0; k < got; k++) {
          if (ph === 2) checksum += buf[k]!;
          if (++ph === 4) {
            ph = 0;
            records++;
          }
        }
        phase[i] = ph;
      }
      return records;
    };
  } else {
    const rings: Int32Array[] = [];
    for (let i = 0; i < producers; i++) {
      const sab = new SharedArrayBuffer(RING_ENTRIES * 16);
      rings.push(new Int32Array(sab));
      datas.push({ mode, index: i, control, ring: sab, slot: SLOT_ID, firstPage: i * span, pageSpan: span });
    }
    const tails = new Int32Array(producers);
    const mask = RING_ENTRIES - 1;
    consume = () => {
      let n = 0;
      for (let i = 0; i < producers; i++) {
        const r = rings[i]!;
        let tail = tails[i]!;
        for (let k = 0; k < RING_ENTRIES; k++) {
          const e = (tail & mask) << 2;
          if (Atomics.load(r, e) !== 1) break;
          checksum += r[e + 2]!;
          Atomics.store(r, e, 0);
          tail = (tail + 1) | 0;
          n++;
        }
        tails[i] = tail;
      }
      return n;
    };
  }
  const workers = await Promise.all(datas.map((d) => spawnBenchWorker('ring-producer', d)));
  return { mode, ctl, workers, consume };
}

function expectedChecksum(producers: number, count: number): number {
  const span = SLOT_PAGES / producers;
  let s = 0;
  for (let i = 0; i < producers; i++) {
    const full = Math.floor(count / span);
    const rest = count % span;
    const first = i * span;
    s += full * (span * first + (span * (span - 1)) / 2) + rest * first + (rest * (rest - 1)) / 2;
  }
  return s;
}

/** One round: every producer pushes `count` records; returns records per second. */
function runRound(m: ModeSetup, producers: number, count: number, round: number): number {
  const ctl = m.ctl;
  const total = producers * count;
  const backoff = new Backoff(`ring path ${m.mode}: consumer saw no records`);
  checksum = 0;
  Atomics.store(ctl, Ctl.DONE, 0);
  Atomics.store(ctl, Ctl.COUNT, count);
  const t0 = now();
  Atomics.store(ctl, Ctl.ROUND, round);
  Atomics.notify(ctl, Ctl.ROUND);
  let received = 0;
  while (received < total) {
    const n = m.consume();
    if (n > 0) {
      received += n;
      backoff.progress();
    } else {
      if (Atomics.load(ctl, Ctl.FAILED) !== 0) throw new Error(`ring path ${m.mode}: a producer failed: ${m.workers.map((w) => w.failure).join('; ')}`);
      backoff.idle();
    }
  }
  const seconds = (now() - t0) / 1000;
  const deadline = now() + 10_000;
  while (Atomics.load(ctl, Ctl.DONE) < producers) {
    if (now() > deadline) throw new BenchTimeoutError(`ring path ${m.mode}: producers finishing round ${round}`, 10_000);
    Atomics.wait(ctl, Ctl.DONE, Atomics.load(ctl, Ctl.DONE), 10);
  }
  if (received !== total) throw new Error(`ring path ${m.mode}: ${received} records received, ${total} pushed`);
  const expect = expectedChecksum(producers, count);
  if (checksum !== expect) throw new Error(`ring path ${m.mode}: offset checksum ${checksum}, expected ${expect}`);
  return total / seconds;
}

async function teardown(m: ModeSetup): Promise<void> {
  Atomics.store(m.ctl, Ctl.ROUND, -1);
  Atomics.notify(m.ctl, Ctl.ROUND);
  await Promise.all(m.workers.map((w) => endBenchWorker(w)));
}

export const ringPathSuite: Suite = {
  id: 'ring-path',
  title: '1. ring data path',
  async run(ctx: SuiteContext): Promise<void> {
    const repeats = ctx.quick ? 5 : 11;
    const count = ctx.quick ? 1_000_000 : 4_000_000;
    const section = this.title;
    for (const producers of [1, 2, 4]) {
      const setups: ModeSetup[] = [];
      try {
        for (const mode of MODES) setups.push(await setupMode(mode, producers));
        const samples: Record<RingMode, number[]> = { dirtyring: [], ringbuf: [], flags: [] };
        let round = 0;
        // Warm-up round per mode (JIT, page faults on fresh buffers), not recorded.
        for (const m of setups) runRound(m, producers, Math.min(count, 400_000) / producers, ++round);
        for (let r = 0; r < repeats; r++) {
          // Rotate the order so that no mode always runs first after a pause.
          for (let k = 0; k < setups.length; k++) {
            const m = setups[(k + r) % setups.length]!;
            samples[m.mode].push(runRound(m, producers, count / producers, ++round));
          }
          // Let the event loop breathe between repeats (worker exits, timers).
          await new Promise((resolve) => setImmediate(resolve));
        }
        ctx.log(
          `  ${producers} producer(s): dirtyring ${(summarize(samples.dirtyring).median / 1e6).toFixed(2)} M/s, ringbuf.js ${(summarize(samples.ringbuf).median / 1e6).toFixed(2)} M/s, flags ${(summarize(samples.flags).median / 1e6).toFixed(2)} M/s`,
        );
        const one = producers === 1;
        const extra = { producers, recordsPerRound: count, ringEntries: RING_ENTRIES };
        ctx.reporter.add({
          id: `ring-path.${producers}p.vs-ringbuf`,
          section,
          name: `push→harvest→reset, ${producers} vCPU thread${one ? '' : 's'} vs ringbuf.js`,
          unit: 'entries/s',
          better: 'higher',
          samples: samples.dirtyring,
          baseline: { name: 'ringbuf.js 0.4.0', samples: samples.ringbuf },
          target: { text: '≥ 100 % of ringbuf.js', minRatio: 1 },
          extra,
        });
        ctx.reporter.add({
          id: `ring-path.${producers}p.vs-flags`,
          section,
          name: `push→harvest→reset, ${producers} vCPU thread${one ? '' : 's'} vs raw flags ring`,
          unit: 'entries/s',
          better: 'higher',
          samples: samples.dirtyring,
          baseline: { name: 'own flags ring', samples: samples.flags },
          target: { text: '≥ 50 % of raw flags ring', minRatio: 0.5 },
          extra,
        });
      } finally {
        await Promise.all(setups.map((m) => teardown(m)));
      }
    }
  },
};
