import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  PAGE_SIZE,
  encodeSlot,
} from '../../../src/abi/constants.js';
import { DEVICE_WRITER_BASE, GuestPageWords } from '../../../src/guest/guest-memory.js';
import { DIRTY_GFN_WORDS } from '../../../src/abi/dirty-gfn.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';
import { VmLayout } from '../../../src/kernel/vm-layout.js';
import { DmaDevice } from '../../../src/kernel/device.js';
import { Vm } from '../../../src/kernel/vm.js';
import { errnoOf } from '../../helpers/errno.js';


describe('ABI layout', () => {
  it('kvm_dirty_gfn is 16 bytes: flags @0, slot @4, offset @8', () => {
    expect(DIRTY_GFN_WORDS).toBe(4);
  });
  it('shared blocks keep their float region 8-byte aligned', () => {
    expect(VmLayout.floatByteOffset % 8).toBe(0);
    expect(VcpuLayout.floatByteOffset % 8).toBe(0);
  });
  it('slot encoding is (as_id << 16) | id', () => {
    expect(encodeSlot(1, 7)).toBe(0x10007);
  });
});

describe('KVM_ENABLE_CAP(DIRTY_LOG_RING)', () => {
  it('is allowed once; the two ring caps share that once', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 8192))).toBe('EINVAL');
    expect(vm.ringBytes).toBe(4096);
  });
  it('is refused once a vCPU exists, and nothing changes', () => {
    const vm = Vm.create();
    vm.createVcpu();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096))).toBe('EINVAL');
    expect(vm.ringBytes).toBe(0);
  });
  it('ignores cap.flags, truncates args[0] to u32, validates before committing', () => {
    const vm = Vm.create();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 2097152))).toBe('E2BIG');
    expect(vm.ringBytes).toBe(0);
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 2 ** 32 + 4096, 1);
    expect(vm.ringBytes).toBe(4096);
  });
  it('is allowed after a logged memslot exists; every vCPU created afterwards has a zeroed ring', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 16, logDirty: true });
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 8192);
    const i = vm.createVcpu();
    const ring = vm.mmapRing(i);
    expect(ring.entryCount).toBe(512);
    expect(ring.i32.every((w) => w === 0)).toBe(true);
  });
  it('CHECK_EXTENSION reports 1 MiB for both ring caps, 3 for manual protect, 0 for ring-with-bitmap on x86', () => {
    const vm = Vm.create();
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING)).toBe(1048576);
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL)).toBe(1048576);
    expect(vm.checkExtension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)).toBe(3);
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP)).toBe(0);
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0))).toBe('EINVAL');
  });
  it('manual protect: flags must be 0, INITIALLY_SET needs ENABLE, unknown bits refused', () => {
    const vm = Vm.create();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1, 1))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 4))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 2))).toBe('EINVAL');
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3);
    expect(vm.manualProtect).toBe(3);
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0);
    expect(vm.manualProtect).toBe(0);
  });
});

describe('ring mmap', () => {
  it('refuses executable mappings with EPERM (before KVM looks), private ones with EINVAL', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    vm.createVcpu();
    expect(errnoOf(() => vm.mmapRing(0, { shared: false }))).toBe('EINVAL');
    expect(errnoOf(() => vm.mmapRing(0, { exec: true }))).toBe('EPERM');
    expect(errnoOf(() => vm.mmapRing(0, { shared: false, exec: true }))).toBe('EPERM');
    expect(vm.mmapRing(0).entryCount).toBe(256);
  });
});

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

describe('attaching a VM from another thread', () => {
  it('sees the same capabilities, slots and vCPUs through the shared buffers', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 8192);
    const slot = vm.createMemslot({ id: 3, baseGfn: 0x1000, pageCount: 32, logDirty: true });
    vm.createVcpu();
    const other = Vm.attach(structuredClone(vm.buffers()));
    expect(other.ringBytes).toBe(8192);
    const seen = other.memslots.findById(0, 3)!;
    expect(seen.pageCount).toBe(32);
    seen.mem32[5] = 0xabcd;
    expect(slot.mem32[5]).toBe(0xabcd);
    other.ring(0)!.push(slot.encodedSlot, 4, 0);
    expect(vm.ring(0)!.used()).toBe(1);
  });
});

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

describe('KVM_CLEAR_DIRTY_LOG argument checks come after ENXIO', () => {
  it('a ring VM answers ENXIO whatever first_page and num_pages are', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
    vm.createMemslot({ id: 1, baseGfn: 0x40000, pageCount: 64, logDirty: true });
    const mask = new Uint32Array(2);
    for (const firstPage of [-64, 1.5, Number.NaN, 2 ** 64]) {
      expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 1), firstPage, 64, mask))).toBe('ENXIO');
    }
    expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 1), 0, -1, mask))).toBe('ENXIO');
  });
  it('a bitmap VM still rejects them with EINVAL', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x40000, pageCount: 64, logDirty: true });
    const mask = new Uint32Array(2);
    expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 1), -64, 64, mask))).toBe('EINVAL');
    expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 1), 0, 2 ** 33, mask))).toBe('EINVAL');
  });
});
