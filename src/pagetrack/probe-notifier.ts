/**
 * A diagnostic notifier for unregister's grace period: it counts the callbacks it receives and
 * those still executing, and can make callbacks last longer — busy for `holdUs`, or blocked on
 * a gate userspace opens — so that "unregister returned while a callback was in flight" and
 * "a notification was delivered after unregister returned" become observable. Both must never
 * happen (kvm_page_track_unregister_notifier waits with synchronize_srcu). Only callbacks for
 * writes to tracked pages (and memslot removals) linger; the many other emulated writes are
 * just counted, so that a probe does not slow the whole guest down.
 */
import { ProbeNotifierLayout, type ProbeNotifierBlock } from './probe-notifier-layout.js';
import { SharedBlock } from '../abi/layout.js';
import type { PageTrackNotifier, TrackNotifierSpec, TrackWriteInfo } from '../kernel/page-track-notifier.js';
import { KERNEL_WAIT_TIMEOUT_MS, waitWhileEqual } from '../kernel/sync.js';
import { now } from '../base/clock.js';
import { US_PER_MS } from '../base/units.js';

export const PROBE_KIND = 'probe';
const W = ProbeNotifierLayout.words;
/** One wait of a callback at a closed gate, between two looks at it (opening it notifies). */
const GATE_WAIT_SLICE_MS = 50;

export interface ProbeOptions {
  /** Busy time inside each callback, in microseconds (default 0). */
  readonly holdUs?: number;
  /** Start with the gate closed: callbacks block until `openGate` (bounded). */
  readonly gateClosed?: boolean;
}

export class ProbeNotifier implements PageTrackNotifier {
  readonly block: ProbeNotifierBlock;

  static allocate(options: ProbeOptions = {}): SharedArrayBuffer {
    const block = new SharedBlock(ProbeNotifierLayout);
    Atomics.store(block.i32, W.HOLD_US, Math.max(0, Math.floor(options.holdUs ?? 0)));
    Atomics.store(block.i32, W.GATE, options.gateClosed ? 1 : 0);
    return block.buffer;
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.block = new SharedBlock(ProbeNotifierLayout, buffer, 0);
  }

  spec(): TrackNotifierSpec {
    return { kind: PROBE_KIND, buffer: this.buffer };
  }

  trackWrite(_gpa: number, _bytes: Uint8Array, _length: number, info: TrackWriteInfo): void {
    this.enter(W.DELIVERED, info.tracked);
  }

  trackRemoveRegion(_baseGfn: number, _pageCount: number): void {
    this.enter(W.REMOVE_REGIONS, true);
  }

  private enter(counter: number, linger: boolean): void {
    const w = this.block.i32;
    Atomics.add(w, W.IN_FLIGHT, 1);
    Atomics.add(w, counter, 1);
    try {
      if (!linger) return;
      if (Atomics.load(w, W.GATE) !== 0) {
        const deadline = now() + KERNEL_WAIT_TIMEOUT_MS;
        while (Atomics.load(w, W.GATE) !== 0) {
          if (now() >= deadline) {
            Atomics.add(w, W.GATE_TIMEOUTS, 1);
            break;
          }
          waitWhileEqual(w, W.GATE, 1, GATE_WAIT_SLICE_MS);
        }
      }
      const holdUs = Atomics.load(w, W.HOLD_US);
      if (holdUs > 0) {
        const until = now() + holdUs / US_PER_MS;
        while (now() < until) {
          /* busy: a long callback widens the window unregister must wait out */
        }
      }
    } finally {
      Atomics.sub(w, W.IN_FLIGHT, 1);
    }
  }

  openGate(): void {
    Atomics.store(this.block.i32, W.GATE, 0);
    Atomics.notify(this.block.i32, W.GATE);
  }

  get inFlight(): number {
    return Atomics.load(this.block.i32, W.IN_FLIGHT);
  }

  get delivered(): number {
    return Atomics.load(this.block.i32, W.DELIVERED);
  }

  get removeRegions(): number {
    return Atomics.load(this.block.i32, W.REMOVE_REGIONS);
  }

  get gateTimeouts(): number {
    return Atomics.load(this.block.i32, W.GATE_TIMEOUTS);
  }
}
