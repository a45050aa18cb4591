/**
 * BUGGY: reports (so the harness copies) each page as soon as its entry is harvested, before
 * KVM_RESET_DIRTY_RINGS has re-protected it. A vCPU can still write the page through its
 * writable mapping after the copy, with no new ring entry: the destination keeps the old
 * contents.
 *
 * Expected: caught as `copy-mismatch` or `unlogged-write` (controlled) within 200 controlled
 * runs; free runs catch it only when a write lands in the window (not every run).
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

export default defineHarvester({
  name: 'copy-before-reset',
  log: 'ring',
  create(kvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch = new Uint32Array(rings.map((r) => r.startIndex));
    return {
      collect() {
        let n = 0;
        for (let v = 0; v < rings.length; v++) {
          const ring = rings[v]!;
          let i = fetch[v]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            kvm.report(ring.readSlot(i), ring.readOffset(i)); // too early
            ring.storeResetRelease(i);
            n++;
            i = (i + 1) >>> 0;
          }
          fetch[v] = i;
        }
        if (n > 0) kvm.resetDirtyRings();
      },
    };
  },
});
