/**
 * When userspace harvested and when it reset, for the harvester and reset lanes. Userspace runs
 * in the live run's worker; it records each collection and each KVM_RESET_DIRTY_RINGS as an
 * interval in shared memory (in place: no allocation, no message), and the page reads them when
 * it draws. Times are epoch milliseconds (timeOrigin + now), the one clock two threads share.
 *
 *   starts: Float64 × CAPACITY, ends: Float64 × CAPACITY, then Int32 count (intervals so far)
 */
import type { Vm } from '../../kernel/vm.js';
import type { DirtyPageCopier } from '../../userspace/dirty-copier.js';
import type { LogCollector, ReadyPageSink } from '../../userspace/log-collectors.js';

/** Intervals kept per lane: far more than a lane's visible window holds. */
const CAPACITY = 4096;
const FLOAT_BYTES = Float64Array.BYTES_PER_ELEMENT;

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

export class IntervalRing {
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  private readonly countWord: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(2 * CAPACITY * FLOAT_BYTES + Int32Array.BYTES_PER_ELEMENT)) {
    this.starts = new Float64Array(buffer, 0, CAPACITY);
    this.ends = new Float64Array(buffer, CAPACITY * FLOAT_BYTES, CAPACITY);
    this.countWord = new Int32Array(buffer, 2 * CAPACITY * FLOAT_BYTES, 1);
  }

  get count(): number {
    return Atomics.load(this.countWord, 0);
  }

  /** Record an interval (one writer); the count is published last. */
  add(start: number, end: number): void {
    const n = Atomics.load(this.countWord, 0);
    const i = n % CAPACITY;
    this.starts[i] = start;
    this.ends[i] = end;
    Atomics.store(this.countWord, 0, n + 1);
  }

  /** Visit the kept intervals, newest first, until `visit` returns false. */
  forEachNewest(visit: (start: number, end: number) => boolean): void {
    const count = this.count;
    const kept = Math.min(count, CAPACITY);
    for (let k = 1; k <= kept; k++) {
      const i = (count - k) % CAPACITY;
      if (!visit(this.starts[i]!, this.ends[i]!)) return;
    }
  }
}

export interface ActivityBuffers {
  readonly harvest: SharedArrayBuffer;
  readonly reset: SharedArrayBuffer;
}

export class ActivityLog {
  readonly harvest: IntervalRing;
  readonly reset: IntervalRing;

  constructor(buffers?: ActivityBuffers) {
    this.harvest = new IntervalRing(buffers?.harvest);
    this.reset = new IntervalRing(buffers?.reset);
  }

  get buffers(): ActivityBuffers {
    return { harvest: this.harvest.buffer, reset: this.reset.buffer };
  }
}

/** The collector, timed: every collection is an interval of the harvest lane; `after` runs after each. */
export function timedCollector(inner: LogCollector, log: ActivityLog, after: () => void): LogCollector {
  return {
    mode: inner.mode,
    stats: inner.stats,
    collect(sink: ReadyPageSink, final: boolean, ringFull?: readonly number[]): number {
      const t0 = epochNow();
      const n = inner.collect(sink, final, ringFull);
      log.harvest.add(t0, epochNow());
      after();
      return n;
    },
    // A harvester on threads of its own starts them, copies on them and ends them through these.
    ...(inner.ready && { ready: () => inner.ready!() }),
    ...(inner.close && { close: () => inner.close!() }),
    ...(inner.copyOnReport && { copyOnReport: (copier: DirtyPageCopier, oracle: ReadyPageSink) => inner.copyOnReport!(copier, oracle) }),
    ...(inner.fetchIndex && { fetchIndex: (vcpu: number) => inner.fetchIndex!(vcpu) }),
  };
}

/** Time KVM_RESET_DIRTY_RINGS on this VM (the reset lane): the instance's method, wrapped. */
export function timeResets(vm: Vm, log: ActivityLog): void {
  const reset = vm.resetDirtyRings.bind(vm);
  vm.resetDirtyRings = (signalPending?: () => boolean): number => {
    const t0 = epochNow();
    try {
      return reset(signalPending);
    } finally {
      log.reset.add(t0, epochNow());
    }
  };
}
