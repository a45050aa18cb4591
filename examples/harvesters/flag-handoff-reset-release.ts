/**
 * CORRECT: flag-handoff-reset.ts with its hand-off ordered. Thread 0 harvests every ring, marks
 * the entries RESET, then raises `shared[0]` with a release store; thread 1 waits for it with
 * acquire loads — so every mark is visible to it, and to the reset walk it runs — resets, and
 * raises `shared[1]` (release); thread 0 waits for that (acquire: the reset has returned) and
 * reports.
 *
 * Expected: 0 forbidden in free runs and in controlled runs under every memory model.
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

export default defineHarvester({
  name: 'flag-handoff-reset-release',
  log: 'ring',
  threads: 2,
  create(kvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch = new Uint32Array(rings.map((r) => r.startIndex));
    const held: number[] = [];
    let collection = 0;
    return {
      collect() {
        collection++;
        if (kvm.thread === 1) {
          while (kvm.shared.loadAcquire(0) !== collection); // pairs with the release: the marks are in
          kvm.resetDirtyRings();
          kvm.shared.storeRelease(1, collection);
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
        kvm.shared.storeRelease(0, collection); // every mark before it is seen before it
        while (kvm.shared.loadAcquire(1) !== collection);
        for (let k = 0; k < held.length; k += 2) kvm.report(held[k]!, held[k + 1]!);
      },
    };
  },
});
