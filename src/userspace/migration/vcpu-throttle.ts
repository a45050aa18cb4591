/**
 * The vCPU thread's side of dirty-limit (QEMU's dirtylimit_vcpu_execute): after each
 * KVM_EXIT_DIRTY_RING_FULL has been dealt with (harvest + reset, the thread released), sleep
 * `throttle_us_per_full` before re-entering. Userspace's controller (dirty-limit.ts) sets that
 * value per vCPU from the vCPU's measured dirty rate; the sleep is the whole mechanism: a vCPU
 * that fills its ring faster sleeps more often, so its dirty rate falls towards the quota.
 *
 * The sleep is cut short when userspace stops wanting the vCPU to run (pause for the final
 * stop-and-copy, terminate): CONTROL changes and WAKE is bumped, which is what the sleep waits on.
 */
import { VcpuControl, VcpuLayout } from '../../kernel/vcpu-layout.js';
import { VcpuThrottleLayout, type VcpuThrottleBlock } from './migration-layout.js';
import { SharedBlock } from '../../abi/layout.js';
import { now } from '../../base/clock.js';
import { NS_PER_MS, US_PER_MS } from '../../base/units.js';
import { STALL_WAIT_SLICE_MS } from '../thread-timing.js';

const W = VcpuLayout.words;
const T = VcpuThrottleLayout.words;
const TF = VcpuThrottleLayout.floats;

export class VcpuThrottle {
  readonly block: VcpuThrottleBlock;

  constructor(
    buffer: SharedArrayBuffer,
    /** The vCPU's own VcpuLayout words (CONTROL and WAKE). */
    private readonly vcpuWords: Int32Array,
  ) {
    this.block = new SharedBlock(VcpuThrottleLayout, buffer);
  }

  /** Sleep the current throttle (blocking: this runs in the vCPU's worker thread). */
  sleepAfterRingFull(): void {
    const us = Atomics.load(this.block.i32, T.THROTTLE_US_PER_FULL);
    if (us <= 0) return;
    const w = this.vcpuWords;
    const t0 = now();
    Atomics.store(this.block.i32, T.SLEEPING, 1);
    const end = t0 + us / US_PER_MS;
    for (;;) {
      const seq = Atomics.load(w, W.WAKE);
      // CONTROL is stored before WAKE is bumped: a pause before `seq` was read shows here.
      if (Atomics.load(w, W.CONTROL) !== VcpuControl.RUN) break;
      const left = end - now();
      if (left <= 0) break;
      Atomics.wait(w, W.WAKE, seq, Math.min(left, STALL_WAIT_SLICE_MS));
    }
    Atomics.store(this.block.i32, T.SLEEPING, 0);
    const f = this.block.f64;
    f[TF.THROTTLE_SLEEP_NS] = f[TF.THROTTLE_SLEEP_NS]! + (now() - t0) * NS_PER_MS;
    f[TF.THROTTLE_SLEEPS] = f[TF.THROTTLE_SLEEPS]! + 1;
  }
}
