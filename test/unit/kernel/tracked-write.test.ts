/**
 * Stores to write-tracked pages: emulated (one dirty record per store), notified after the
 * write, never made writable; the TLB flush that adding tracking needs; the mutants.
 */
import { describe, expect, it } from 'vitest';
import { KVM_EXIT_HLT, PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { gfns, ringVm } from '../../helpers/vm-fixtures.js';
import { Recorder, gfn, harvest } from './page-track-recorder.js';

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
