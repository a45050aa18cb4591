/**
 * When userspace harvested and when it reset, for the harvester and reset lanes. Userspace runs
 * on the page's main thread, so a frame never lands in the middle of a collection: the lanes are
 * drawn from these recorded intervals, not sampled. Fixed-size rings of start/end times, written
 * in place (no allocation, no message per collection).
 */
import type { Vm } from '../../kernel/vm.js';
import type { LogCollector, ReadyPageSink } from '../../userspace/log-collectors.js';

/** Intervals kept per lane: far more than a lane's visible window holds. */
const CAPACITY = 4096;

export class IntervalRing {
  readonly starts = new Float64Array(CAPACITY);
  readonly ends = new Float64Array(CAPACITY);
  /** Intervals recorded so far (the newest is at (count - 1) % CAPACITY). */
  count = 0;

  add(start: number, end: number): void {
    const i = this.count % CAPACITY;
    this.starts[i] = start;
    this.ends[i] = end;
    this.count++;
  }

  /** Visit the kept intervals, newest first, until `visit` returns false. */
  forEachNewest(visit: (start: number, end: number) => boolean): void {
    const kept = Math.min(this.count, CAPACITY);
    for (let k = 1; k <= kept; k++) {
      const i = (this.count - k) % CAPACITY;
      if (!visit(this.starts[i]!, this.ends[i]!)) return;
    }
  }
}

export class ActivityLog {
  readonly harvest = new IntervalRing();
  readonly reset = new IntervalRing();
}

/** The collector, timed: every collection is an interval of the harvest lane. */
export function timedCollector(inner: LogCollector, log: ActivityLog): LogCollector {
  return {
    mode: inner.mode,
    stats: inner.stats,
    collect(sink: ReadyPageSink, final: boolean): number {
      const t0 = performance.now();
      const n = inner.collect(sink, final);
      log.harvest.add(t0, performance.now());
      return n;
    },
    ...(inner.fetchIndex && { fetchIndex: (vcpu: number) => inner.fetchIndex!(vcpu) }),
  };
}

/** Time KVM_RESET_DIRTY_RINGS on this VM (the reset lane): the instance's method, wrapped. */
export function timeResets(vm: Vm, log: ActivityLog): void {
  const reset = vm.resetDirtyRings.bind(vm);
  vm.resetDirtyRings = (signalPending?: () => boolean): number => {
    const t0 = performance.now();
    try {
      return reset(signalPending);
    } finally {
      log.reset.add(t0, performance.now());
    }
  };
}
