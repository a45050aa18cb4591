/** KVM_RESET_DIRTY_RINGS: the walk over every ring, re-protection of each batch, the flush. */
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING, KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, encodeSlot } from '../../../src/abi/constants.js';
import { harvestRing, writeRawEntry } from '../../../src/kernel/dirty-ring.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { ringVm } from '../../helpers/vm-fixtures.js';
import { errnoOf } from '../../helpers/errno.js';

describe('KVM_RESET_DIRTY_RINGS', () => {
  /** Push `offsets` on vCPU 0's ring as the kernel would, return the ring mapping. */
  function pushed(offsets: number[], opts: Parameters<typeof ringVm>[0] = {}) {
    const fx = ringVm(opts);
    const ring = fx.vm.ring(0)!;
    for (const o of offsets) ring.push(fx.slot.encodedSlot, o, 0);
    return { ...fx, ring, views: fx.vm.mmapRing(0) };
  }
  function markReset(views: ReturnType<typeof pushed>['views'], indices: number[], flags = KVM_DIRTY_GFN_F_RESET) {
    for (const i of indices) Atomics.store(views.i32, i * 4, flags);
  }

  it('EINVAL without a ring', async () => {
    const { Vm } = await import('../../../src/kernel/vm.js');
    expect(errnoOf(() => Vm.create().resetDirtyRings())).toBe('EINVAL');
  });

  it('partial reset: only the entries marked RESET, counted per call', () => {
    const { vm, views } = pushed([...Array(20).keys()]);
    markReset(views, [0, 1, 2, 3, 4]);
    expect(vm.resetDirtyRings()).toBe(5);
    expect(vm.resetDirtyRings()).toBe(0);
    expect(Atomics.load(views.i32, 0)).toBe(0);
    expect(Atomics.load(views.i32, 5 * 4)).toBe(KVM_DIRTY_GFN_F_DIRTY);
  });

  it('stops at the first entry without RESET (the gap), resumes there', () => {
    const { vm, views } = pushed([...Array(10).keys()]);
    markReset(views, [0, 1, 2, 3, 4]);
    expect(vm.resetDirtyRings()).toBe(5);
    markReset(views, [5, 6, 8]);
    expect(vm.resetDirtyRings()).toBe(2);
    expect(Atomics.load(views.i32, 8 * 4)).toBe(KVM_DIRTY_GFN_F_RESET);
    markReset(views, [7]);
    expect(vm.resetDirtyRings()).toBe(2);
  });

  it('flags value 3 (DIRTY|RESET) counts as harvested; a 0 stops the walk', () => {
    const { vm, views } = pushed([1, 2, 3]);
    markReset(views, [0], 3);
    markReset(views, [1], 0);
    markReset(views, [2]);
    expect(vm.resetDirtyRings()).toBe(1);
  });

  it('re-protects exactly the pages named, and flushes TLBs once per call', () => {
    const { vm, slot, views } = pushed([3, 4, 70]);
    for (const p of [3, 4, 5, 70]) Atomics.store(slot.spte, p, 1);
    markReset(views, [0, 1, 2]);
    const flushes = vm.stats().tlbFlushes;
    expect(vm.resetDirtyRings()).toBe(3);
    expect([3, 4, 5, 70].map((p) => Atomics.load(slot.spte, p))).toEqual([0, 0, 1, 0]);
    expect(vm.stats().tlbFlushes).toBe(flushes + 1);
  });

  it('garbage entries are counted and skipped without error (as observed)', () => {
    const { vm, slot, views } = pushed([]);
    Atomics.store(slot.spte, 5, 1);
    writeRawEntry(views, 0, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0xffffffffffn);
    writeRawEntry(views, 1, KVM_DIRTY_GFN_F_RESET, encodeSlot(0, 999), 5n);
    writeRawEntry(views, 2, KVM_DIRTY_GFN_F_RESET, encodeSlot(1, 1), 5n);
    writeRawEntry(views, 3, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 5000n);
    expect(vm.resetDirtyRings()).toBe(4);
    expect(vm.stats().resetBatchesSkipped).toBe(4);
    expect(Atomics.load(slot.spte, 5)).toBe(1);
    expect(vm.stats().kernelBugs).toBe(0);
  });

  it('a bad entry coalesced with good ones makes the whole batch be skipped', () => {
    const { vm, slot, views } = pushed([10, 11]);
    Atomics.store(slot.spte, 10, 1);
    Atomics.store(slot.spte, 11, 1);
    writeRawEntry(views, 2, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1023n + 10n); // past the end, same batch
    markReset(views, [0, 1]);
    expect(vm.resetDirtyRings()).toBe(3);
    // offset 10 + fls(mask) >= npages only if the bad entry joined the batch; it did not
    // (delta 1023 ≥ 64), so 10 and 11 are protected and only the bad batch is skipped.
    expect(Atomics.load(slot.spte, 10)).toBe(0);
    writeRawEntry(views, 3, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1000n);
    writeRawEntry(views, 4, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1030n); // 1000 + 30 ≥ 1024
    Atomics.store(slot.spte, 1000, 1);
    expect(vm.resetDirtyRings()).toBe(2);
    expect(Atomics.load(slot.spte, 1000)).toBe(1); // skipped with its bad partner
  });

  it('the wrapped offset pair is rejected since 577a8d3bae05, accepted by the pre-2026 check (mutant)', () => {
    for (const mutant of [0, Mutant.RESET_WRAP_CHECK]) {
      const { vm, slot, views } = pushed([], { vm: { mutants: mutant } });
      Atomics.store(slot.spte, 0, 1);
      writeRawEntry(views, 0, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0xffffffffffffffc1n);
      writeRawEntry(views, 1, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0n);
      expect(vm.resetDirtyRings()).toBe(2);
      if (mutant === 0) {
        expect(vm.stats().kernelBugs).toBe(0);
        expect(Atomics.load(slot.spte, 0)).toBe(1);
      } else {
        // The wrapped check passes and the kernel indexes its rmap out of bounds.
        expect(vm.stats().kernelBugs).toBe(1);
        expect(Atomics.load(slot.spte, 0)).toBe(0);
      }
    }
  });

  it('RESET beyond the head is consumed too, and `used` wraps (as observed)', () => {
    const { vm, views, ring } = pushed([1]);
    markReset(views, [0, 1, 2]);
    expect(vm.resetDirtyRings()).toBe(3);
    expect(ring.used()).toBe(2 ** 32 - 2);
    expect(ring.isFull()).toBe(true);
  });

  it('a signal pending ends the walk with a partial count; the rest stays for the next reset', () => {
    const { vm, views } = pushed([1, 2, 3, 4]);
    markReset(views, [0, 1, 2, 3]);
    let calls = 0;
    expect(vm.resetDirtyRings(() => ++calls > 2)).toBe(2);
    expect(vm.resetDirtyRings()).toBe(2);
  });

  it('walks every vCPU ring in one call', () => {
    const fx = ringVm({ vcpus: 2 });
    for (let v = 0; v < 2; v++) {
      const ring = fx.vm.ring(v)!;
      for (let i = 0; i < 10; i++) ring.push(fx.slot.encodedSlot, v * 10 + i, 0);
    }
    let harvested = 0;
    for (let v = 0; v < 2; v++) harvested += harvestRing(fx.vm.mmapRing(v), { fetchIndex: 0 }, 100, () => {});
    expect(harvested).toBe(20);
    expect(fx.vm.resetDirtyRings()).toBe(20);
  });

  it('entries for a deleted slot are counted and ignored', () => {
    const { vm, views, slot } = pushed([1, 2, 3, 4, 5, 6, 7, 8]);
    void slot;
    vm.deleteMemslot(1);
    markReset(views, [0, 1, 2, 3, 4, 5, 6, 7]);
    expect(vm.resetDirtyRings()).toBe(8);
    expect(vm.stats().resetBatchesSkipped).toBe(1);
  });

  it('the ring cap number 192 behaves like 223', async () => {
    const { Vm } = await import('../../../src/kernel/vm.js');
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    expect(vm.ringEntries).toBe(256);
  });
});
