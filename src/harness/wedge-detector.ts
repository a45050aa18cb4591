/**
 * Telling a wedged vCPU from a slow one without a clock. A vCPU stalled on exit 31 can only run
 * again once userspace has harvested and reset enough of its ring. If, across one collection,
 * the vCPU pushed nothing (its dirty_index did not move) and its ring is *still* soft-full
 * afterwards, then the collection harvested every published entry and the reset consumed them,
 * yet `used` did not drop below the soft limit: nothing userspace can do will ever let that vCPU
 * in again (every KVM_RUN exits 31 at once). With a correct kernel `used` is 0 at that point,
 * so this never fires on a slow machine; a broken ring (e.g. pushes past the reserve that
 * overwrote entries) is reported at the first stall instead of after a long no-progress timeout.
 */
import type { Vm } from '../kernel/vm.js';

/** Prefix of the error a run reports for a wedged vCPU (the stress harness classifies on it). */
export const WEDGED_VCPU = 'wedged vCPU';

export class RingWedgeDetector {
  private readonly watched: number[] = [];
  private readonly dirtyIndex: number[] = [];

  /** Before a collection: remember the stalled vCPUs and where their rings' heads are. */
  arm(vm: Vm, stalled: readonly number[]): void {
    this.watched.length = 0;
    this.dirtyIndex.length = 0;
    for (const i of stalled) {
      const ring = vm.ring(i);
      if (!ring) continue;
      this.watched.push(i);
      this.dirtyIndex.push(ring.dirtyIndexShared);
    }
  }

  /** After the collection: the first wedged vCPU, described, or null. */
  check(vm: Vm, stillStalled: (vcpu: number) => boolean): string | null {
    for (let k = 0; k < this.watched.length; k++) {
      const i = this.watched[k]!;
      const ring = vm.ring(i)!;
      if (!stillStalled(i) || ring.dirtyIndexShared !== this.dirtyIndex[k]) continue;
      if (ring.isSoftFull()) {
        return (
          `${WEDGED_VCPU} ${i}: its ring is still soft-full after harvest + reset ` +
          `(used ${ring.used()} of ${ring.size}, soft limit ${ring.softLimit}); every KVM_RUN would exit 31 again`
        );
      }
    }
    return null;
  }
}
