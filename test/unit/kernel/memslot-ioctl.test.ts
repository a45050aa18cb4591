/** KVM_SET_USER_MEMORY_REGION: create, delete, move and flag changes, and the table's consistency. */
import { describe, expect, it } from 'vitest';
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, PAGE_SIZE, encodeSlot } from '../../../src/abi/constants.js';
import { AssertionError, debugChecks } from '../../../src/base/assert.js';
import { MemslotLayout } from '../../../src/kernel/memslot-layout.js';
import { Vm } from '../../../src/kernel/vm.js';
import { errnoOf } from '../../helpers/errno.js';

describe('KVM_SET_USER_MEMORY_REGION', () => {
  const region = (id: number, gpa: number, pages: number, flags = 0) => ({
    slot: id,
    flags,
    guestPhysAddr: gpa,
    memorySize: pages * PAGE_SIZE,
  });

  it('validates ids, address spaces, alignment and flags, changing nothing on error', () => {
    const vm = Vm.create();
    expect(errnoOf(() => vm.setUserMemoryRegion(region(32764, 0, 1)))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(encodeSlot(1, 1), 0, 1)))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion({ ...region(1, 0, 1), memorySize: 100 }))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(1, 123, 1)))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(1, 0, 1, 0x80)))).toBe('EINVAL');
    expect(vm.memslots.active()).toHaveLength(0);
  });
  it('refuses overlaps (EEXIST), resizing and READONLY toggles (EINVAL); deleting a missing slot is EINVAL', () => {
    const vm = Vm.create();
    vm.setUserMemoryRegion(region(1, 0x100000, 16));
    expect(errnoOf(() => vm.setUserMemoryRegion(region(2, 0x100000 + 15 * PAGE_SIZE, 4)))).toBe('EEXIST');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(1, 0x100000, 17)))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(1, 0x100000, 16, KVM_MEM_READONLY)))).toBe('EINVAL');
    expect(errnoOf(() => vm.setUserMemoryRegion(region(9, 0, 0)))).toBe('EINVAL');
    vm.setUserMemoryRegion(region(2, 0x100000 + 16 * PAGE_SIZE, 4));
    expect(vm.memslots.active().map((s) => s.id).sort()).toEqual([1, 2]);
  });
  it('turning logging on write-protects the whole slot; off leaves pages as they are', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 8 });
    for (let p = 0; p < 8; p++) Atomics.store(slot.spte, p, 1);
    vm.setLogDirty(1, true);
    expect([...slot.spte]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(slot.logDirty).toBe(true);
    Atomics.store(slot.spte, 3, 1);
    vm.setLogDirty(1, false);
    expect(slot.logDirty).toBe(false);
    expect(Atomics.load(slot.spte, 3)).toBe(1);
    expect(slot.flags & KVM_MEM_LOG_DIRTY_PAGES).toBe(0);
  });
  it('a slot can be moved; its pages are protected again', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 4, logDirty: true });
    Atomics.store(slot.spte, 1, 1);
    vm.setUserMemoryRegion(region(1, 0x200 * PAGE_SIZE, 4, KVM_MEM_LOG_DIRTY_PAGES));
    const moved = vm.memslots.findById(0, 1)!;
    expect(moved.baseGfn).toBe(0x200);
    expect(Atomics.load(moved.spte, 1)).toBe(0);
  });
});

describe('memslot table consistency (debug, checked after every change)', () => {
  const W = MemslotLayout.words;

  it.runIf(debugChecks)('two entries with one id make the next region change fail', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 4 });
    const second = vm.createMemslot({ id: 2, baseGfn: 0x200, pageCount: 4 });
    Atomics.store(vm.memslots.entry(second.tableIndex).i32, W.ID, 1); // corrupt: id 1 twice
    expect(() => vm.createMemslot({ id: 3, baseGfn: 0x300, pageCount: 4 })).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('overlapping slots make the next region change fail', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 4 });
    const second = vm.createMemslot({ id: 2, baseGfn: 0x200, pageCount: 4 });
    Atomics.store(vm.memslots.entry(second.tableIndex).i32, W.BASE_GFN_LO, 0x102);
    Atomics.add(vm.memslots.entry(second.tableIndex).i32, W.GENERATION, 1);
    expect(() => vm.setLogDirty(1, true)).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('a bitmap on a slot that does not log makes the next region change fail', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 4 });
    Atomics.store(vm.memslots.entry(slot.tableIndex).i32, W.HAS_BITMAP, 1);
    expect(() => vm.createMemslot({ id: 2, baseGfn: 0x200, pageCount: 4 })).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('a live bitmap of the wrong size makes the next region change fail', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 100, logDirty: true });
    slot.bitmap = new Int32Array(new SharedArrayBuffer(8)); // 64 pages' worth for a 100-page slot
    expect(() => vm.createMemslot({ id: 2, baseGfn: 0x200, pageCount: 4 })).toThrow(AssertionError);
  });

  it('a consistent table passes', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 100, logDirty: true });
    vm.createMemslot({ id: 2, baseGfn: 0x200, pageCount: 4 });
    expect(() => vm.memslots.checkConsistency()).not.toThrow();
    expect(vm.memslots.active()).toHaveLength(2);
  });
});
