/**
 * Bitmap logging's ioctls against the real kernel's observed behaviour (docs/PROTOCOL.md,
 * sections 5, 6 and 8): legacy GET, manual protect GET + CLEAR, the CLEAR alignment table,
 * initially-set, ENXIO with a ring, bad slot ids, EFAULT, writes with no running vCPU.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  encodeSlot,
} from '../../../src/abi/constants.js';
import { AssertionError, debugChecks } from '../../../src/base/assert.js';
import { bitmapPages, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { NoVcpuMark, Vm } from '../../../src/kernel/vm.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { errnoOf } from '../../helpers/errno.js';
import { BASE, SLOT, bitmapVm } from './bitmap-fixtures.js';


describe('legacy KVM_GET_DIRTY_LOG', () => {
  it('returns and clears exactly the stored pages, and re-protects them', () => {
    const { store, get, slot } = bitmapVm();
    expect(get()).toEqual([]);
    store(1, 3, 5, 70, 99);
    expect(get()).toEqual([1, 3, 5, 70, 99]);
    expect(get()).toEqual([]);
    store(3, 7);
    expect(get()).toEqual([3, 7]);
    expect(Atomics.load(slot.spte, 3)).toBe(0);
  });
  it('a store to a page already writable and logged sets nothing new until GET protects it', () => {
    const { store, get } = bitmapVm();
    store(10);
    store(10);
    expect(get()).toEqual([10]);
    store(10);
    expect(get()).toEqual([10]);
  });
  it('a NULL buffer is EFAULT and the bits are gone (the next GET is empty)', () => {
    const { vm, store, get } = bitmapVm();
    store(4, 8);
    expect(errnoOf(() => vm.getDirtyLog(SLOT, null))).toBe('EFAULT');
    expect(get()).toEqual([]);
  });
  it('a byte buffer passed again, or another one over the same memory, gets the bits at its own bytes', () => {
    const { vm, store } = bitmapVm();
    const memory = new Uint8Array(64);
    const first = memory.subarray(0, 16);
    const second = memory.subarray(16, 32);
    const pagesIn = (bytes: Uint8Array): number[] => bitmapPages(new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
    for (const [out, page] of [[first, 3], [first, 40], [second, 70], [first, 99]] as const) {
      store(page);
      vm.getDirtyLog(SLOT, out);
      expect(pagesIn(out)).toEqual([page]);
    }
    expect(pagesIn(second)).toEqual([70]);
  });
  it('CLEAR works without manual protect', () => {
    const { store, get, clear } = bitmapVm();
    store(10);
    clear(0, 64, [10]);
    expect(get()).toEqual([]);
  });
  it('the legacy-get-no-protect mutant leaves the pages writable: later stores are not logged', () => {
    const { store, get } = bitmapVm({ mutants: Mutant.LEGACY_GET_NO_PROTECT });
    store(10);
    expect(get()).toEqual([10]);
    store(10);
    expect(get()).toEqual([]);
  });
});

describe('manual protect (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)', () => {
  it('GET copies without clearing; CLEAR clears the given bits; a store after CLEAR is logged', () => {
    const { store, get, clear } = bitmapVm({ manual: 1 });
    store(1, 3, 5, 70, 99);
    expect(get()).toEqual([1, 3, 5, 70, 99]);
    expect(get()).toEqual([1, 3, 5, 70, 99]);
    clear(0, 64, [1, 3]);
    expect(get()).toEqual([5, 70, 99]);
    store(1);
    expect(get()).toEqual([1, 5, 70, 99]);
  });
  it('CLEAR(first 64, num 36, bit 6) clears page 70: bit i is page first + i', () => {
    const { store, get, clear } = bitmapVm({ manual: 1 });
    store(70, 71);
    clear(64, 36, [6]);
    expect(get()).toEqual([71]);
  });
  it('a store between GET and CLEAR is not reported after that CLEAR; one after it is', () => {
    const { store, get, clear } = bitmapVm({ manual: 1 });
    store(5);
    expect(get()).toEqual([5]);
    store(5); // the page is still writable: no new fault, the bit was set anyway
    clear(0, 64, [5]);
    expect(get()).toEqual([]);
    store(5);
    expect(get()).toEqual([5]);
  });
  it('CLEAR re-protects only the pages whose bits it actually cleared', () => {
    const { slot, store, clear } = bitmapVm({ manual: 1 });
    store(2);
    Atomics.store(slot.spte, 9, 1); // writable, but not dirty in the bitmap
    clear(0, 64, [2, 9]);
    expect(Atomics.load(slot.spte, 2)).toBe(0);
    expect(Atomics.load(slot.spte, 9)).toBe(1);
  });
  it('GET with a NULL buffer is EFAULT and the bits are kept', () => {
    const { vm, store, get } = bitmapVm({ manual: 1 });
    store(6);
    expect(errnoOf(() => vm.getDirtyLog(SLOT, null))).toBe('EFAULT');
    expect(get()).toEqual([6]);
  });
});

describe('CLEAR alignment (a 100-page slot, as observed)', () => {
  const table: [number, number, string | null][] = [
    [1, 63, 'EINVAL'],
    [32, 32, 'EINVAL'],
    [0, 32, 'EINVAL'],
    [0, 63, 'EINVAL'],
    [96, 4, 'EINVAL'],
    [64, 36, null],
    [64, 37, 'EINVAL'],
    [0, 128, 'EINVAL'],
    [0, 100, null],
    [0, 0, null],
    [64, 0, null],
    [128, 0, 'EINVAL'],
    [100, 0, 'EINVAL'],
  ];
  it.each(table)('first %i, num %i → %s', (first, num, errno) => {
    const { vm, store, get } = bitmapVm({ manual: 1 });
    store(10, 70);
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, first, num, new Uint32Array(4).fill(0xffffffff)))).toBe(errno);
    if (errno !== null) expect(get()).toEqual([10, 70]); // nothing changed
  });
  it('a NULL mask is EFAULT', () => {
    const { vm } = bitmapVm({ manual: 1 });
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 0, 64, null))).toBe('EFAULT');
  });
  it('with num_pages 0 nothing is copied in, so a NULL mask is fine (as observed on 6.18)', () => {
    const { vm, store, get } = bitmapVm({ manual: 1 });
    store(1, 70);
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 0, 0, null))).toBeNull();
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 64, 0, null))).toBeNull();
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 64, 36, null))).toBe('EFAULT');
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 128, 0, null))).toBe('EINVAL'); // range checks first
    expect(get()).toEqual([1, 70]);
  });
  it('first_page alignment is checked before the slot lookup (EINVAL even for a missing slot)', () => {
    const { vm } = bitmapVm({ manual: 1 });
    expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 5), 3, 64, new Uint32Array(2)))).toBe('EINVAL');
    expect(errnoOf(() => vm.clearDirtyLog(encodeSlot(0, 5), 0, 64, new Uint32Array(2)))).toBe('ENOENT');
  });
  it('the clear-unaligned mutant accepts first 32 and clears the wrong pages', () => {
    const { vm, store, get } = bitmapVm({ manual: 1, mutants: Mutant.CLEAR_UNALIGNED });
    store(1, 33);
    vm.clearDirtyLog(SLOT, 32, 64, maskFromPages(64, [1])); // meant page 33…
    expect(get()).toEqual([33]); // …but page 1 was cleared
  });
});

describe('initially-set', () => {
  it('a logged slot created after the cap starts all ones (padding bits 0), unprotected until CLEAR', () => {
    const { vm, slot, store, get, clear } = bitmapVm({ manual: 3 });
    const out = new Uint32Array(4);
    vm.getDirtyLog(SLOT, out);
    expect([...out]).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0x0000000f]);
    store(3);
    expect(get()).toHaveLength(100);
    expect(Atomics.load(slot.spte, 50)).toBe(0); // never written: not present, not protected by logging
    clear(0, 100, [...Array(100).keys()]);
    expect(get()).toEqual([]);
    store(3);
    expect(get()).toEqual([3]);
  });
  it('log flag off → GET ENOENT; on again → all set again', () => {
    const { vm, get } = bitmapVm({ manual: 3 });
    vm.setLogDirty(1, false);
    expect(errnoOf(() => get())).toBe('ENOENT');
    vm.setLogDirty(1, true);
    expect(get()).toHaveLength(100);
  });
  it('enabling initially-set after the slot exists does not set its bits', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3);
    const out = new Uint32Array(4);
    vm.getDirtyLog(SLOT, out);
    expect(bitmapPages(out)).toEqual([]);
  });
});

describe('slot checks (as observed)', () => {
  it('no slot or no logging → ENOENT; id ≥ 32764 or as_id ≥ 1 → EINVAL', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 0, baseGfn: 0x10, pageCount: 16 });
    const buf = new Uint32Array(64);
    for (const id of [0, 5, 32763]) expect(errnoOf(() => vm.getDirtyLog(encodeSlot(0, id), buf))).toBe('ENOENT');
    for (const id of [32764, 40000 & 0xffff]) expect(errnoOf(() => vm.getDirtyLog(encodeSlot(0, id), buf))).toBe('EINVAL');
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(1, 0), buf))).toBe('EINVAL');
  });
  it('with a ring, GET and CLEAR are ENXIO before any slot check', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    expect(errnoOf(() => vm.getDirtyLog(SLOT, new Uint32Array(4)))).toBe('ENXIO');
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(0, 40000), new Uint32Array(4)))).toBe('ENXIO');
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 1, 64, new Uint32Array(4)))).toBe('ENXIO');
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3); // accepted, still ENXIO
    expect(errnoOf(() => vm.getDirtyLog(SLOT, new Uint32Array(4)))).toBe('ENXIO');
  });
});

describe('the slot of the previous call is looked up again once it changed', () => {
  const buf = new Uint32Array(64);
  it('deleted → ENOENT; logging off → ENOENT; recreated larger → the new size is GET and CLEARed', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    vm.getDirtyLog(SLOT, buf);
    vm.deleteMemslot(1);
    expect(errnoOf(() => vm.getDirtyLog(SLOT, buf))).toBe('ENOENT');
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 0, 64, buf))).toBe('ENOENT');
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    vm.getDirtyLog(SLOT, buf);
    vm.setLogDirty(1, false);
    expect(errnoOf(() => vm.getDirtyLog(SLOT, buf))).toBe('ENOENT');
    vm.deleteMemslot(1);
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 1000, logDirty: true });
    // 1000 pages need 128 bytes: the 64 bytes that were enough for the old slot are EFAULT now.
    expect(errnoOf(() => vm.getDirtyLog(SLOT, new Uint32Array(16)))).toBe('EFAULT');
    vm.markPageDirtyNoVcpu(vm.memslots.findById(0, 1)!, 999);
    expect(bitmapPages(getInto(vm, new Uint32Array(32)))).toEqual([999]);
  });
  it('another slot id, or one out of range, is checked from scratch after a good call', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    vm.getDirtyLog(SLOT, buf);
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(0, 2), buf))).toBe('ENOENT');
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(0, 32764), buf))).toBe('EINVAL');
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(1, 1), buf))).toBe('EINVAL');
    expect(errnoOf(() => vm.getDirtyLog(-1, buf))).toBe('EINVAL');
    expect(errnoOf(() => vm.clearDirtyLog(SLOT, 1, 64, buf))).toBe('EINVAL');
    vm.getDirtyLog(SLOT, buf);
  });
});

function getInto(vm: Vm, out: Uint32Array): Uint32Array {
  vm.getDirtyLog(SLOT, out);
  return out;
}

describe('writes with no running vCPU', () => {
  it('a bitmap VM logs them in the slot bitmap', () => {
    const { vm, slot, get } = bitmapVm();
    expect(vm.markPageDirtyNoVcpu(slot, 42)).toBe(NoVcpuMark.LOGGED);
    expect(get()).toEqual([42]);
  });
  it('a ring VM without ring-with-bitmap cannot: the kernel WARNs and the write is lost', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    expect(vm.markPageDirtyNoVcpu(slot, 42)).toBe(NoVcpuMark.LOST);
    expect(vm.warnings).toBe(1);
    expect(vm.stats().noVcpuWritesLost).toBe(1);
  });
  it('ring-with-bitmap (cap 225, offered on request as on arm64): needs a ring and no memslot yet; then logs them', () => {
    const vm = Vm.create({ offerRingWithBitmap: true });
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP)).toBe(1);
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0))).toBe('EINVAL');
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0);
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 100, logDirty: true });
    expect(vm.markPageDirtyNoVcpu(slot, 42)).toBe(NoVcpuMark.LOGGED);
    const out = new Uint32Array(4);
    vm.getDirtyLog(SLOT, out);
    expect(bitmapPages(out)).toEqual([42]);
    const late = Vm.create({ offerRingWithBitmap: true });
    late.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
    late.createMemslot({ id: 1, baseGfn: BASE, pageCount: 8 });
    expect(errnoOf(() => late.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0))).toBe('EINVAL');
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

describe('bitmap shape (debug)', () => {
  it.runIf(debugChecks)('GET on a slot whose live bitmap has the wrong number of words fails', () => {
    const { vm, slot } = bitmapVm();
    slot.bitmap = new Int32Array(new SharedArrayBuffer(8)); // 64 pages' worth for 100 pages
    expect(() => vm.getDirtyLog(SLOT, new Uint32Array(4))).toThrow(AssertionError);
  });
  it.runIf(debugChecks)('CLEAR on a slot whose snapshot has the wrong number of words fails', () => {
    const { vm, slot } = bitmapVm({ manual: 1 });
    slot.bitmapSnapshot = new Uint32Array(2);
    expect(() => vm.clearDirtyLog(SLOT, 0, 64, new Uint32Array(2))).toThrow(AssertionError);
  });
});
