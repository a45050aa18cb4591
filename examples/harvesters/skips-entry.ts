/**
 * BUGGY: the QEMU-style reaper with a batching slip — every 32nd entry it harvests is marked
 * RESET but never reported. The kernel re-protects the page, so no later collection sees it
 * either: the page is lost.
 *
 * Expected: caught as `lost-page` (or `copy-mismatch`), in the first free run and within 20
 * controlled runs (scenarios with 32 or more entries in a collection).
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

const SKIP_PERIOD = 32;

export default defineHarvester({
  name: 'skips-entry',
  log: 'ring',
  create(kvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch = new Uint32Array(rings.map((r) => r.startIndex));
    const capacity = rings.reduce((n, r) => n + r.entryCount, 0);
    const slots = new Uint32Array(capacity);
    const offsets = new Float64Array(capacity);
    let seen = 0;
    return {
      collect() {
        let n = 0;
        let harvested = 0;
        for (let v = 0; v < rings.length; v++) {
          const ring = rings[v]!;
          let i = fetch[v]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            if (++seen % SKIP_PERIOD !== 0) {
              slots[n] = ring.readSlot(i);
              offsets[n] = ring.readOffset(i);
              n++;
            }
            harvested++;
            ring.storeResetRelease(i);
            i = (i + 1) >>> 0;
          }
          fetch[v] = i;
        }
        if (harvested === 0) return;
        kvm.resetDirtyRings();
        for (let k = 0; k < n; k++) kvm.report(slots[k]!, offsets[k]!);
      },
    };
  },
});
