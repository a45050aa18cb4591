/**
 * Page write-tracking's counts, driven single-threaded: their limits, write protection, and
 * what deleting or moving a memslot does to them.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../../src/abi/constants.js';
import { GFN_TRACK_MAX_COUNT } from '../../../src/kernel/page-track-layout.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { SLOT_GFN, ringVm } from '../../helpers/vm-fixtures.js';
import { Recorder, gfn } from './page-track-recorder.js';

describe('write-track counts', () => {
  it('add increments and write-protects, remove decrements; tracked = count > 0', () => {
    const { vm, slot } = ringVm();
    const pt = vm.pageTrack;
    expect(pt.count(gfn(3))).toBe(0);
    pt.addGfn(gfn(3));
    pt.addGfn(gfn(3));
    expect(pt.count(gfn(3))).toBe(2);
    expect(pt.isGfnTracked(gfn(3))).toBe(true);
    expect(Atomics.load(slot.spte, 3) & SpteBits.WRITE_TRACKED).not.toBe(0);
    pt.removeGfn(gfn(3));
    expect(pt.isGfnTracked(gfn(3))).toBe(true);
    pt.removeGfn(gfn(3));
    expect(pt.count(gfn(3))).toBe(0);
    expect(pt.isGfnTracked(gfn(3))).toBe(false);
    expect(Atomics.load(slot.spte, 3)).toBe(0);
    expect(pt.stats()).toMatchObject({ adds: 2, removes: 2, trackedGfns: 0, overflowWarnings: 0, underflowWarnings: 0 });
    expect(vm.warnings).toBe(0);
  });

  it('an add past 65535 warns and leaves the count unchanged', () => {
    const { vm } = ringVm();
    const pt = vm.pageTrack;
    for (let i = 0; i < GFN_TRACK_MAX_COUNT; i++) pt.addGfn(gfn(7));
    expect(pt.count(gfn(7))).toBe(65535);
    expect(vm.warnings).toBe(0);
    pt.addGfn(gfn(7));
    expect(pt.count(gfn(7))).toBe(65535);
    expect(vm.warnings).toBe(1);
    expect(pt.stats()).toMatchObject({ adds: 65535, overflowWarnings: 1 });
    // Still consistent: one remove takes it to 65534.
    pt.removeGfn(gfn(7));
    expect(pt.count(gfn(7))).toBe(65534);
  });

  it('a remove below 0 warns and leaves the count unchanged', () => {
    const { vm, slot } = ringVm();
    const pt = vm.pageTrack;
    pt.removeGfn(gfn(9));
    expect(pt.count(gfn(9))).toBe(0);
    expect(vm.warnings).toBe(1);
    expect(pt.stats()).toMatchObject({ removes: 0, underflowWarnings: 1, trackedGfns: 0 });
    expect(Atomics.load(slot.spte, 9)).toBe(0);
    pt.addGfn(gfn(9));
    expect(pt.count(gfn(9))).toBe(1);
  });

  it.each([
    ['add', (vm: ReturnType<typeof ringVm>['vm'], g: number) => vm.pageTrack.addGfn(g)],
    ['remove', (vm: ReturnType<typeof ringVm>['vm'], g: number) => vm.pageTrack.removeGfn(g)],
  ])('%s on a gfn in no memslot is EINVAL naming the gfn, and changes nothing', (_name, op) => {
    const { vm } = ringVm({ pages: 64 });
    for (const bad of [SLOT_GFN + 64, SLOT_GFN - 1, 0]) {
      expect(() => op(vm, bad)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'gfn' }));
    }
    expect(() => op(vm, -1)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'gfn' }));
    expect(() => op(vm, SLOT_GFN + 0.5)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'gfn' }));
    expect(vm.pageTrack.stats()).toMatchObject({ adds: 0, removes: 0 });
    expect(vm.warnings).toBe(0);
  });
});

describe('memslot delete and move', () => {
  it('deleting a memslot calls track_remove_region(base_gfn, npages) and its counts go with it', () => {
    const fx = ringVm();
    const rec = new Recorder();
    const pt = fx.vm.pageTrack;
    pt.registerNotifier(rec);
    fx.vm.createMemslot({ id: 2, baseGfn: 0x100, pageCount: 32, logDirty: true });
    pt.addGfn(0x105);
    pt.addGfn(gfn(1));
    expect(pt.stats().trackedGfns).toBe(2);
    fx.vm.deleteMemslot(2);
    expect(rec.removed).toEqual([[0x100, 32]]);
    expect(pt.stats()).toMatchObject({ trackedGfns: 1, removeRegionNotifications: 1 });
    expect(() => pt.count(0x105)).toThrowError(expect.objectContaining({ errno: 'EINVAL' }));
    // A new slot over the same gfns starts untracked.
    fx.vm.createMemslot({ id: 3, baseGfn: 0x100, pageCount: 32, logDirty: true });
    expect(pt.count(0x105)).toBe(0);
  });

  it('moving a memslot reports the old region and starts its counts again from 0', () => {
    const fx = ringVm();
    const rec = new Recorder();
    const pt = fx.vm.pageTrack;
    pt.registerNotifier(rec);
    const slot = fx.vm.createMemslot({ id: 2, baseGfn: 0x100, pageCount: 32, logDirty: true });
    pt.addGfn(0x101);
    fx.vm.setUserMemoryRegion({ slot: 2, flags: slot.flags, guestPhysAddr: 0x200 * PAGE_SIZE, memorySize: 32 * PAGE_SIZE });
    expect(rec.removed).toEqual([[0x100, 32]]);
    expect(pt.count(0x201)).toBe(0);
    expect(pt.stats().trackedGfns).toBe(0);
  });
});
