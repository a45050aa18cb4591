/**
 * BUGGY under a weak memory model, correct under sequential consistency: the reset comes from a
 * second thread that waits for the first thread's flag — a relaxed store after its RESET marks,
 * a relaxed load before the reset. Nothing orders the marks before the flag: a CPU (arm64) may
 * make the flag visible first, and the reset then walks entries still flagged DIRTY, stops
 * there and re-protects nothing, while thread 0 reports those pages as safe.
 *
 * Thread 0 harvests every ring and marks the entries RESET, then raises `shared[0]` to the
 * collection's number; thread 1 waits to see it, resets, and raises `shared[1]`; thread 0 waits
 * for that (acquire: the reset has returned) and reports.
 *
 * Expected: 0 forbidden under `--memory-model sc` (and in free runs: x86 and V8's Atomics keep
 * the order); caught under `--memory-model arm64` in controlled runs. The fix is
 * flag-handoff-reset-release.ts: the same hand-off with storeRelease / loadAcquire.
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

export default defineHarvester({
  name: 'flag-handoff-reset',
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
          while (kvm.shared.loadRelaxed(0) !== collection); // the marks are in? (nothing says so)
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
        kvm.shared.storeRelaxed(0, collection); // too weak: the marks may be seen after it
        while (kvm.shared.loadAcquire(1) !== collection);
        for (let k = 0; k < held.length; k += 2) kvm.report(held[k]!, held[k + 1]!);
      },
    };
  },
});
