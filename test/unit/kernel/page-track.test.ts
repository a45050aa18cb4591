/**
 * Page write-tracking in the kernel, driven single-threaded: counts and their limits, write
 * protection and the TLB, emulation of stores to tracked pages (one dirty record per store),
 * notifiers and memslot removal.
 */
import { describe, expect, it } from 'vitest';
import { KVM_EXIT_HLT, PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { GFN_TRACK_MAX_COUNT } from '../../../src/kernel/page-track-layout.js';
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import type { PageTrackNotifier, TrackWriteInfo } from '../../../src/kernel/page-track-notifier.js';
import { SLOT_GFN, gfns, ringVm } from '../../helpers/vm-fixtures.js';

interface Write {
  gpa: number;
  length: number;
  words: number[];
  vcpu: number;
  tracked: boolean;
  /** The page header as the notifier found it in guest memory during the callback. */
  memoryAtCall: number[];
}

/** A notifier that records everything, reading guest memory during each callback. */
class Recorder implements PageTrackNotifier {
  readonly writes: Write[] = [];
  readonly removed: [number, number][] = [];
  constructor(private readonly mem32?: Uint32Array) {}
  trackWrite(gpa: number, bytes: Uint8Array, length: number, info: TrackWriteInfo): void {
    const words = Array.from(new Uint32Array(bytes.slice(0, length).buffer, 0, Math.floor(length / 4)));
    const page = Math.floor(gpa / PAGE_SIZE) - SLOT_GFN;
    const memoryAtCall = this.mem32 ? Array.from(this.mem32.subarray(page * PAGE_WORDS, page * PAGE_WORDS + 4)) : [];
    this.writes.push({ gpa, length, words, vcpu: info.vcpuIndex, tracked: info.tracked, memoryAtCall });
  }
  trackRemoveRegion(baseGfn: number, pageCount: number): void {
    this.removed.push([baseGfn, pageCount]);
  }
}

function harvest(fx: ReturnType<typeof ringVm>, cursor = { fetchIndex: 0 }): number[] {
  const offsets: number[] = [];
  harvestRing(fx.vm.mmapRing(0), cursor, 1 << 20, (_s, lo) => offsets.push(lo));
  return offsets;
}

const gfn = (offset: number): number => SLOT_GFN + offset;

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

describe('stores to write-tracked pages', () => {
  it('a tracked page gives one dirty entry per emulated store, an untracked page one per fault', () => {
    const fx = ringVm();
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    fx.vm.pageTrack.addGfn(gfn(5));
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns([5, 5, 5, 9, 9, 9]), { value: 4 });
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(harvest(fx)).toEqual([5, 5, 5, 9]);
    // Three notifications, each the 16-byte header store, all for page 5, in store order.
    expect(rec.writes.map((w) => [w.gpa, w.length, w.tracked])).toEqual([
      [gfn(5) * PAGE_SIZE, 16, true],
      [gfn(5) * PAGE_SIZE, 16, true],
      [gfn(5) * PAGE_SIZE, 16, true],
    ]);
    expect(rec.writes.map((w) => w.words[GuestPageWords.WRITER_SEQ])).toEqual([1, 2, 3]);
    expect(rec.writes[0]!.words.slice(0, 3)).toEqual([4, 0, 0]);
    // The page holds the last store, and it never became writable.
    expect(fx.slot.mem32[5 * PAGE_WORDS + GuestPageWords.WRITER_SEQ]).toBe(3);
    expect(Atomics.load(fx.slot.spte, 5) & SpteBits.WRITABLE).toBe(0);
    const f = vcpu.block.f64;
    expect(f[VcpuLayout.floats.FAULTS]).toBe(4); // three emulated + one fixed
    expect(fx.vm.pageTrack.stats()).toMatchObject({ trackedWrites: 3, notifierCalls: 3 });
  });

  it('an emulated instruction storing to a tracked page logs and notifies every store', () => {
    const fx = ringVm();
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    fx.vm.pageTrack.addGfn(gfn(5));
    fx.programs[0]!.enqueue(gfns([5]), { storesPerPage: 3 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(harvest(fx)).toEqual([5, 5, 5]);
    expect(rec.writes.filter((w) => w.tracked)).toHaveLength(3);
  });

  it('notifies after the store (the notifier reads the new bytes); the mutant notifies before', () => {
    for (const mutants of [0, Mutant.TRACK_NOTIFY_BEFORE_WRITE]) {
      const fx = ringVm({ vm: { mutants } });
      const rec = new Recorder(fx.slot.mem32);
      fx.vm.pageTrack.registerNotifier(rec);
      fx.vm.pageTrack.addGfn(gfn(2));
      fx.programs[0]!.enqueue(gfns([2]), { value: 77 });
      fx.vcpus[0]!.run(fx.programs[0]!);
      const w = rec.writes[0]!;
      if (mutants === 0) expect(w.memoryAtCall).toEqual(w.words);
      else expect(w.memoryAtCall[GuestPageWords.ITERATION_LO]).not.toBe(77);
    }
  });

  it('untracked emulated writes still reach the notifiers, as two writes, flagged untracked', () => {
    const fx = ringVm({ vcpu: { emulateAllStores: true } });
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    fx.programs[0]!.enqueue(gfns([6]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(rec.writes.map((w) => [w.gpa - gfn(6) * PAGE_SIZE, w.length, w.tracked])).toEqual([
      [0, 16, false],
      [rec.writes[1]!.gpa - gfn(6) * PAGE_SIZE, 4, false],
    ]);
    expect(rec.writes[1]!.gpa - gfn(6) * PAGE_SIZE).toBeGreaterThanOrEqual(16);
    expect(fx.vm.pageTrack.stats()).toMatchObject({ trackedWrites: 0, notifiedWrites: 2 });
  });

  it('nested tracking: one remove of two leaves the page tracked', () => {
    const fx = ringVm();
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    fx.vm.pageTrack.addGfn(gfn(1));
    fx.vm.pageTrack.addGfn(gfn(1));
    fx.vm.pageTrack.removeGfn(gfn(1));
    fx.programs[0]!.enqueue(gfns([1, 1]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(rec.writes).toHaveLength(2);
  });

  it('after the last remove the page stays protected until its next fault, which fixes it', () => {
    const fx = ringVm();
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    const pt = fx.vm.pageTrack;
    pt.addGfn(gfn(8));
    pt.removeGfn(gfn(8));
    expect(Atomics.load(fx.slot.spte, 8) & (SpteBits.WRITABLE | SpteBits.WRITE_TRACKED)).toBe(0);
    const vcpu = fx.vcpus[0]!;
    fx.programs[0]!.enqueue(gfns([8, 8, 8]));
    vcpu.run(fx.programs[0]!);
    expect(rec.writes).toHaveLength(0);
    expect(vcpu.block.f64[VcpuLayout.floats.FAULTS]).toBe(1);
    expect(Atomics.load(fx.slot.spte, 8) & SpteBits.WRITABLE).not.toBe(0);
    expect(harvest(fx)).toEqual([8]);
  });

  it('a page cached writable in a TLB: tracking it flushes every TLB, so the next store is emulated', () => {
    const fx = ringVm({ vcpus: 2 });
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    const [v0, v1] = fx.vcpus as [(typeof fx.vcpus)[0], (typeof fx.vcpus)[0]];
    fx.programs[0]!.enqueue(gfns([4]));
    fx.programs[1]!.enqueue(gfns([4]));
    v0.run(fx.programs[0]!);
    v1.run(fx.programs[1]!);
    expect(v0.tlb.lookup(gfn(4))).not.toBeNull();
    expect(v1.tlb.lookup(gfn(4))).not.toBeNull();
    fx.vm.pageTrack.addGfn(gfn(4));
    for (const v of [v0, v1]) expect(Atomics.load(v.block.i32, VcpuLayout.words.REQUESTS) & VcpuRequest.TLB_FLUSH).not.toBe(0);
    fx.programs[0]!.enqueue(gfns([4]), { value: 5 });
    fx.programs[1]!.enqueue(gfns([4]), { value: 6 });
    v0.run(fx.programs[0]!);
    v1.run(fx.programs[1]!);
    expect(rec.writes.map((w) => [w.vcpu, w.words[0]])).toEqual([
      [0, 5],
      [1, 6],
    ]);
  });

  it('an already read-only page still gets the flush: a TLB entry may outlive its SPTE until a reset flushes', () => {
    const fx = ringVm({ vm: { mutants: Mutant.NO_TLB_FLUSH } }); // resets leave TLBs stale
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    const vcpu = fx.vcpus[0]!;
    fx.programs[0]!.enqueue(gfns([4]));
    vcpu.run(fx.programs[0]!);
    harvest(fx);
    fx.vm.resetDirtyRings(); // SPTE read-only, TLB entry still writable
    expect(Atomics.load(fx.slot.spte, 4) & SpteBits.WRITABLE).toBe(0);
    fx.vm.pageTrack.addGfn(gfn(4));
    fx.programs[0]!.enqueue(gfns([4]));
    vcpu.run(fx.programs[0]!);
    expect(rec.writes).toHaveLength(1);
  });

  it('mutant track-no-tlb-flush: a stale TLB entry keeps writing the tracked page silently', () => {
    const fx = ringVm({ vm: { mutants: Mutant.TRACK_NO_TLB_FLUSH } });
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    const vcpu = fx.vcpus[0]!;
    fx.programs[0]!.enqueue(gfns([4]));
    vcpu.run(fx.programs[0]!);
    fx.vm.pageTrack.addGfn(gfn(4));
    fx.programs[0]!.enqueue(gfns([4]), { value: 9 });
    vcpu.run(fx.programs[0]!);
    expect(fx.slot.mem32[4 * PAGE_WORDS]).toBe(9);
    expect(rec.writes).toHaveLength(0);
  });

  it('mutant track-fault-fixes-tracked: the fault makes the tracked page writable and later stores are silent', () => {
    const fx = ringVm({ vm: { mutants: Mutant.TRACK_FAULT_FIXES_TRACKED } });
    const rec = new Recorder();
    fx.vm.pageTrack.registerNotifier(rec);
    fx.vm.pageTrack.addGfn(gfn(4));
    fx.programs[0]!.enqueue(gfns([4, 4, 4]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(rec.writes).toHaveLength(0);
    expect(harvest(fx)).toEqual([4]);
  });
});

describe('notifiers', () => {
  it('receive writes only while registered', () => {
    const fx = ringVm();
    const [a, b] = [new Recorder(), new Recorder()];
    const pt = fx.vm.pageTrack;
    const ida = pt.registerNotifier(a);
    pt.addGfn(gfn(3));
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    const idb = pt.registerNotifier(b);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    pt.unregisterNotifier(ida);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(a.writes).toHaveLength(2);
    expect(b.writes).toHaveLength(2);
    pt.unregisterNotifier(idb);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(b.writes).toHaveLength(2);
    expect(pt.stats()).toMatchObject({ notifiersRegistered: 2, notifiersUnregistered: 2, gracePeriods: 2, activeNotifiers: 0, trackedWrites: 4 });
    expect(() => pt.unregisterNotifier(idb)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'notifier' }));
    expect(fx.vm.warnings).toBe(0);
  });

  it('the table is finite: ENOMEM when full, and an entry is reusable after unregister', () => {
    const { vm } = ringVm();
    const ids: number[] = [];
    expect(() => {
      for (;;) ids.push(vm.pageTrack.registerNotifier(new Recorder()));
    }).toThrowError(expect.objectContaining({ errno: 'ENOMEM', param: 'notifier' }));
    expect(ids).toHaveLength(16);
    vm.pageTrack.unregisterNotifier(ids[3]!);
    expect(vm.pageTrack.registerNotifier(new Recorder())).toBe(ids[3]);
  });

  it('an ACTIVE notifier this thread has no instance of is a kernel WARN, never a silent skip', () => {
    const fx = ringVm();
    const pt = fx.vm.pageTrack;
    const { id, generation } = pt.reserveNotifier();
    pt.activateNotifier(id, generation); // nobody attached an instance
    pt.addGfn(gfn(3));
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.vm.warnings).toBe(1);
  });

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
