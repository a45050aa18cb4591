/**
 * Registering and unregistering page-track notifiers while the vCPU threads run.
 *
 * register: reserve a table entry (readers ignore it), build an instance in this thread and
 * post the spec to every worker, which builds its own (vcpu-worker-api `attachTrackNotifier`);
 * only when every thread has acknowledged is the entry made ACTIVE. So no reader can meet an
 * ACTIVE entry it has no instance for. A worker answers between KVM_RUN slices (at most
 * `preemptAfterMs` apart) or at once while parked; every call is bounded.
 *
 * unregister: unlink the entry, then wait out the grace period without blocking this thread
 * (Atomics.waitAsync on the SRCU word of each vCPU still inside the notifier list), so that the
 * same code runs on a browser's main thread. When the promise resolves no callback of the
 * notifier is running in any thread and none will start.
 */
import type { PageTrackNotifier, TrackNotifierSpec } from '../kernel/page-track-notifier.js';
import type { Vm } from '../kernel/vm.js';
import { createTrackNotifier } from '../pagetrack/kinds.js';
import { TimeoutError, waitAsyncWhileEqual, withTimeout } from '../platform/async-wait.js';
import { CONTROL_TIMEOUT_MS } from './guest-fleet.js';
import { USERSPACE_WAIT_SLICE_MS } from './thread-timing.js';
import type { VcpuWorkerHandle } from './vcpu-worker-api.js';

export interface UnregisterResult {
  /** Whether a reader was inside the notifier list and had to be waited for. */
  readonly waited: boolean;
  readonly elapsedMs: number;
}

export class PageTrackControl {
  constructor(
    readonly vm: Vm,
    /** Every worker attached to the VM (vCPUs and devices): each needs the instance. */
    private readonly workers: readonly Pick<VcpuWorkerHandle, 'api'>[],
    private readonly timeoutMs = CONTROL_TIMEOUT_MS,
  ) {}

  /**
   * Register `spec` in this thread and every worker; returns the notifier id and this thread's
   * instance (the one that receives track_remove_region for the ioctls this thread makes).
   */
  async register(spec: TrackNotifierSpec): Promise<{ id: number; local: PageTrackNotifier }> {
    const pageTrack = this.vm.pageTrack;
    const local = createTrackNotifier(spec, this.vm);
    const { id, generation } = pageTrack.reserveNotifier();
    try {
      pageTrack.attachNotifier(id, generation, local);
      await Promise.all(
        this.workers.map((w, i) =>
          withTimeout(w.api.attachTrackNotifier(id, generation, spec), this.timeoutMs, `attaching notifier ${id} in worker ${i}`),
        ),
      );
      pageTrack.activateNotifier(id, generation);
    } catch (e) {
      pageTrack.cancelReservation(id, generation);
      throw e;
    }
    return { id, local };
  }

  /** Unregister notifier `id`, waiting out its grace period asynchronously (bounded). */
  async unregister(id: number): Promise<UnregisterResult> {
    const pageTrack = this.vm.pageTrack;
    const t0 = performance.now();
    const snapshot = pageTrack.beginUnregister(id);
    let waited = false;
    for (;;) {
      const r = pageTrack.pendingReader(snapshot);
      if (r === null) break;
      waited = true;
      const left = t0 + this.timeoutMs - performance.now();
      if (left <= 0) throw new TimeoutError(`unregister notifier ${id}: ${r.what} never left the notifier list`, this.timeoutMs);
      await waitAsyncWhileEqual(r.i32, r.index, r.value, Math.min(left, USERSPACE_WAIT_SLICE_MS));
    }
    const elapsedMs = performance.now() - t0;
    pageTrack.endUnregister(id, waited, elapsedMs);
    return { waited, elapsedMs };
  }
}
