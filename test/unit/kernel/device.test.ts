/** A device writing guest memory with no running vCPU (DmaDevice). */
import { describe, expect, it } from 'vitest';
import { KVM_MEM_LOG_DIRTY_PAGES, PAGE_SIZE, encodeSlot } from '../../../src/abi/constants.js';
import { DEVICE_WRITER_BASE, GuestPageWords } from '../../../src/guest/guest-memory.js';
import { DmaDevice } from '../../../src/kernel/device.js';
import { Vm } from '../../../src/kernel/vm.js';

describe('DMA device: its cached memslot view follows slot changes', () => {
  const BASE = 0x40000;
  const PAGES = 16;
  const bitmapPagesOf = (vm: Vm, id: number): number[] => {
    const out = new Uint32Array(2);
    vm.getDirtyLog(encodeSlot(0, id), out);
    const pages: number[] = [];
    for (let p = 0; p < 64; p++) if ((out[p >>> 5]! >>> (p & 31)) & 1) pages.push(p);
    return pages;
  };
  const writer = (slot: { mem32: Uint32Array }, page: number): number =>
    slot.mem32[page * (PAGE_SIZE / 4) + GuestPageWords.WRITER_VCPU]!;

  it('after a delete and a create at the same table index, writes go to the new slot', () => {
    const vm = Vm.create();
    const old = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: PAGES, logDirty: true });
    const dev = new DmaDevice(vm, 0);
    expect(dev.write(BASE + 3, 1)).toBe(true);
    expect(bitmapPagesOf(vm, 1)).toEqual([3]);
    vm.deleteMemslot(1);
    const fresh = vm.createMemslot({ id: 2, baseGfn: BASE, pageCount: PAGES, logDirty: true });
    expect(fresh.tableIndex).toBe(old.tableIndex);
    expect(dev.write(BASE + 5, 2)).toBe(true);
    expect(writer(fresh, 5)).toBe(DEVICE_WRITER_BASE);
    expect(writer(old, 5)).toBe(0);
    expect(bitmapPagesOf(vm, 2)).toEqual([5]);
    expect(dev.logged).toBe(2);
  });

  it('after a move, the old range is no slot and the new one maps to the moved pages', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: PAGES, logDirty: true });
    const dev = new DmaDevice(vm, 0);
    expect(dev.write(BASE + 3, 1)).toBe(true);
    expect(bitmapPagesOf(vm, 1)).toEqual([3]);
    const moved = BASE + 0x100;
    vm.setUserMemoryRegion({
      slot: encodeSlot(0, 1),
      flags: KVM_MEM_LOG_DIRTY_PAGES,
      guestPhysAddr: moved * PAGE_SIZE,
      memorySize: PAGES * PAGE_SIZE,
    });
    expect(dev.write(BASE + 7, 2)).toBe(false);
    expect(writer(slot, 7)).toBe(0);
    expect(dev.write(moved + 9, 3)).toBe(true);
    expect(writer(slot, 9)).toBe(DEVICE_WRITER_BASE);
    expect(bitmapPagesOf(vm, 1)).toEqual([9]);
  });

  it('counts a write to a slot that does not log as neither logged nor lost', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: PAGES, logDirty: false });
    const dev = new DmaDevice(vm, 0);
    expect(dev.write(BASE + 1, 1)).toBe(true);
    expect([dev.writes, dev.logged, dev.lost]).toEqual([1, 0, 0]);
  });
});
