/**
 * Per-vCPU reaper threads with a coordinator (correct): the harvester runs on two threads of
 * its own; thread t harvests the rings of the vCPUs v with v % 2 === t and marks their entries
 * RESET; all threads meet at a barrier; thread 0 — the coordinator — calls
 * KVM_RESET_DIRTY_RINGS once every thread's marks are in; all meet again; then each thread
 * reports the pages it harvested, now safe to read.
 *
 * Expected: 0 forbidden outcomes, in free runs and in controlled runs (each thread is a
 * scheduled participant there).
 */
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from 'dirtyring';

export default defineHarvester({
  name: 'per-vcpu-threads',
  log: 'ring',
  threads: 2,
  create(kvm) {
    const mine: number[] = [];
    for (let v = kvm.thread; v < kvm.vcpuCount; v += kvm.threads) mine.push(v);
    const rings = mine.map((v) => kvm.ring(v));
    const fetch = new Uint32Array(rings.map((r) => r.startIndex));
    const capacity = rings.reduce((n, r) => n + r.entryCount, 0);
    const slots = new Uint32Array(capacity);
    const offsets = new Float64Array(capacity);
    return {
      collect() {
        let n = 0;
        for (let k = 0; k < rings.length; k++) {
          const ring = rings[k]!;
          let i = fetch[k]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            slots[n] = ring.readSlot(i);
            offsets[n] = ring.readOffset(i);
            n++;
            ring.storeResetRelease(i);
            i = (i + 1) >>> 0;
          }
          fetch[k] = i;
        }
        kvm.barrier(); // every thread's RESET marks are in
        if (kvm.thread === 0) kvm.resetDirtyRings();
        kvm.barrier(); // the reset has returned
        for (let k = 0; k < n; k++) kvm.report(slots[k]!, offsets[k]!);
      },
    };
  },
});
