/**
 * BUGGY: the reset comes from a second thread that does not synchronise with the harvesting one.
 * Thread 0 harvests every ring and marks the entries RESET; thread 1 calls
 * KVM_RESET_DIRTY_RINGS at the start of the collection, whenever it gets there, without waiting
 * for thread 0's marks. When the reset runs first, it consumes nothing, and thread 0 then
 * reports pages that no reset has write-protected again: the guest keeps writing them with no
 * new record until a later reset, and those writes are lost.
 *
 * Expected: caught in free runs (`lost-page` or `copy-mismatch`), not in every run: it takes
 * the reset to lose the race. (Synchronised — a barrier between the marks and the reset, and
 * another before the reports — it is per-vcpu-threads.ts.)
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

export default defineHarvester({
  name: 'second-thread-reset',
  log: 'ring',
  threads: 2,
  create(kvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch = new Uint32Array(rings.map((r) => r.startIndex));
    const held: number[] = [];
    return {
      collect() {
        if (kvm.thread === 1) {
          kvm.resetDirtyRings(); // no synchronisation with thread 0's marks
          return;
        }
        held.length = 0;
        for (let v = 0; v < rings.length; v++) {
          const ring = rings[v]!;
          let i = fetch[v]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            held.push(ring.readSlot(i), ring.readOffset(i));
            ring.storeResetRelease(i);
            i = (i + 1) >>> 0;
          }
          fetch[v] = i;
        }
        for (let k = 0; k < held.length; k += 2) kvm.report(held[k]!, held[k + 1]!);
      },
    };
  },
});
