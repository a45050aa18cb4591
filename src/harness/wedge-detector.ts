/**
 * Telling a wedged vCPU from a slow one without a clock. A vCPU stalled on exit 31 can only run
 * again once userspace has harvested and reset enough of its ring. If across a collection the
 * vCPU pushed nothing (its dirty_index did not move) and its ring is *still* soft-full
 * afterwards, the collection should have drained it (with a correct kernel `used` is then 0):
 * the vCPU is suspect. It is declared wedged when the next collection finds the same — the
 * vCPU was released in between, re-entered, exited 31 again at once without pushing, and its
 * ring still cannot be drained: nothing userspace can do will let it in again. Requiring two
 * collections keeps a transient on a starved machine from being called a wedge, and still
 * reports a broken ring (pushes past the reserve that overwrote entries) within a few polls
 * instead of after a long no-progress timeout.
 */
import type { Vm } from '../kernel/vm.js';

/** Prefix of the error a run reports for a wedged vCPU (the stress harness classifies on it). */
export const WEDGED_VCPU = 'wedged vCPU';

export class RingWedgeDetector {
  private readonly watched: number[] = [];
  private readonly dirtyIndex: number[] = [];
  /** vCPU → the dirty_index at which a collection last failed to drain its ring. */
  private readonly suspects = new Map<number, number>();

  /** Before a collection: remember the stalled vCPUs and where their rings' heads are. */
  arm(vm: Vm, stalled: readonly number[]): void {
    this.watched.length = 0;
    this.dirtyIndex.length = 0;
    for (const i of this.suspects.keys()) if (!stalled.includes(i)) this.suspects.delete(i);
    for (const i of stalled) {
      const ring = vm.ring(i);
      if (!ring) continue;
      this.watched.push(i);
      this.dirtyIndex.push(ring.dirtyIndexShared);
    }
  }

  /** After the collection: the first vCPU confirmed wedged, described, or null. */
  check(vm: Vm, stillStalled: (vcpu: number) => boolean): string | null {
    for (let k = 0; k < this.watched.length; k++) {
      const i = this.watched[k]!;
      const ring = vm.ring(i)!;
      const head = this.dirtyIndex[k]!;
      if (!stillStalled(i) || ring.dirtyIndexShared !== head || !ring.isSoftFull()) {
        this.suspects.delete(i);
        continue;
      }
      if (this.suspects.get(i) !== head) {
        this.suspects.set(i, head);
        continue;
      }
      const reset = ring.resetIndexShared;
      return (
        `${WEDGED_VCPU} ${i}: its ring stays soft-full after two harvest + reset rounds with no push in between ` +
        `(used ${ring.used()} of ${ring.size}, soft limit ${ring.softLimit}; dirty_index ${head}, reset_index ${reset}, ` +
        `flags at reset_index ${ring.entryFlags(reset)}); every KVM_RUN would exit 31 again`
      );
    }
    return null;
  }

  /** Whether a collection has failed once to drain this vCPU's ring (awaiting confirmation). */
  isSuspect(vcpu: number): boolean {
    return this.suspects.has(vcpu);
  }
}
