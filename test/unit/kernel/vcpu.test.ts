/**
 * KVM_RUN driven in this thread, deterministically: soft-full exits and the stall, exits to
 * userspace, kicks, the TLB and its flush, loads, INITIALLY_SET with a ring.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_EXIT_DIRTY_RING_FULL,
  KVM_EXIT_HLT,
  KVM_EXIT_INTR,
  KVM_EXIT_IO,
  KVM_EXIT_MMIO,
  PAGE_WORDS,
} from '../../../src/abi/constants.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../helpers/vm-fixtures.js';
import { harvestAll } from './vcpu-harvest.js';

describe('soft-full: exit 31 and the stall', () => {
  it('exits 31 right after the push that makes used reach size − 64, and again on every re-entry', () => {
    const fx = ringVm({ ringEntries: 256 });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns(range(0, 300)));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(fx.vm.ring(0)!.used()).toBe(192);
    // The faulting store is pending: its page was logged before its write happened.
    expect(vcpu.hasPendingInstruction).toBe(true);
    expect(fx.slot.mem32[191 * PAGE_WORDS]).toBe(0);
    for (let i = 0; i < 3; i++) expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(fx.vm.ring(0)!.used()).toBe(192);
    // Harvest all + reset: the guest continues; the retried store faults again (one redundant entry).
    expect(harvestAll(fx)).toHaveLength(192);
    expect(fx.vm.resetDirtyRings()).toBe(192);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    const next = harvestAll(fx);
    expect(next).toEqual(range(191, 300 - 191));
    expect(fx.slot.mem32[191 * PAGE_WORDS]).toBe(1);
  });

  it('after harvesting only 10 and resetting, the next exit comes after exactly 10 more pushes', () => {
    const fx = ringVm({ ringEntries: 256 });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns(range(0, 400)));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(harvestAll(fx, 0, 10)).toHaveLength(10);
    expect(fx.vm.resetDirtyRings()).toBe(10);
    const before = fx.vm.ring(0)!.dirtyIndexShared;
    expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(fx.vm.ring(0)!.dirtyIndexShared - before).toBe(10);
  });

  it('an emulated burst may push past the soft limit into the reserve, never past the ring', () => {
    const fx = ringVm({ ringEntries: 256 });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns(range(0, 190)));
    prog.enqueue(gfns([500]), { storesPerPage: 60 });
    prog.enqueue(gfns([600]));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(fx.vm.ring(0)!.used()).toBe(250);
    expect(fx.vm.warnings).toBe(0);
  });

  it('the late-soft-full mutant lets pushes overrun the ring (a kernel WARN)', () => {
    const fx = ringVm({ ringEntries: 256, vm: { mutants: Mutant.LATE_SOFT_FULL } });
    fx.programs[0]!.enqueue(gfns(range(0, 300)));
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(fx.vm.ring(0)!.used()).toBeGreaterThan(256);
    expect(fx.vm.warnings).toBeGreaterThan(0);
  });
});

describe('exits to userspace', () => {
  it('exitEach leaves with KVM_EXIT_IO after the store completes', () => {
    const fx = ringVm();
    fx.programs[0]!.enqueue(gfns([1, 2]), { exitEach: true });
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_IO);
    expect(fx.vcpus[0]!.hasPendingInstruction).toBe(false);
    expect(harvestAll(fx)).toEqual([1]);
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_IO);
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_HLT);
  });

  it('a kick makes KVM_RUN return -EINTR at the next entry', () => {
    const fx = ringVm();
    fx.programs[0]!.enqueue(gfns([1, 2, 3]));
    fx.vm.kickVcpu(0);
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_INTR);
    expect(fx.programs[0]!.remaining).toBe(3);
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_HLT);
  });
});

describe('the software TLB and the remote flush', () => {
  it('a stale TLB entry would let a store skip the fault; the reset flush removes it', () => {
    const fx = ringVm();
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns([4]));
    vcpu.run(prog);
    // The retried store read the now-writable SPTE and cached it.
    expect(vcpu.tlb.lookup(gfns([4])[0]!)).not.toBeNull();
    harvestAll(fx);
    expect(fx.vm.resetDirtyRings()).toBe(1);
    // The vCPU was outside guest mode: the flush did not wait, but the request is posted…
    expect(Atomics.load(vcpu.block.i32, VcpuLayout.words.REQUESTS) & VcpuRequest.TLB_FLUSH).not.toBe(0);
    // …and processed on entry, before any guest store: the next store faults and logs.
    prog.enqueue(gfns([4]));
    vcpu.run(prog);
    expect(Atomics.load(vcpu.block.i32, VcpuLayout.words.REQUESTS)).toBe(0);
    expect(harvestAll(fx)).toEqual([4]);
    expect(vcpu.block.f64[VcpuLayout.floats.FAULTS]).toBe(2);
  });

  it('without the flush (mutant no-tlb-flush) the re-protected page is written silently', () => {
    const fx = ringVm({ vm: { mutants: Mutant.NO_TLB_FLUSH } });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns([4, 4]));
    vcpu.run(prog);
    harvestAll(fx);
    expect(fx.vm.resetDirtyRings()).toBe(1);
    expect(Atomics.load(fx.slot.spte, 4)).toBe(0); // protected in the SPTE…
    prog.enqueue(gfns([4]), { value: 99 });
    vcpu.run(prog);
    expect(fx.slot.mem32[4 * PAGE_WORDS]).toBe(99); // …yet written through the stale TLB entry
    expect(harvestAll(fx)).toEqual([]); // and nothing recorded it: a lost page
  });

  it('memslot deletion drops cached slots: a later store to it exits MMIO', () => {
    const fx = ringVm();
    const other = fx.vm.createMemslot({ id: 2, baseGfn: 0x10, pageCount: 4, logDirty: true });
    void other;
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue([0x10, 0x10]);
    vcpu.run(prog);
    fx.vm.deleteMemslot(2);
    prog.enqueue([0x11]);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_MMIO);
  });
});

describe('an unharvested ring never loses entries to reset', () => {
  it('reset consumes only RESET entries even when DIRTY ones follow', () => {
    const fx = ringVm();
    fx.programs[0]!.enqueue(gfns([1, 2, 3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(harvestAll(fx, 0, 1)).toEqual([1]);
    expect(fx.vm.resetDirtyRings()).toBe(1);
    expect(harvestAll(fx)).toEqual([2, 3]);
  });
});

describe('loads', () => {
  it.each([false, true])('never push, on either path (emulateAllStores %s); exitEach leaves after each; outside every slot → MMIO', (emulateAllStores) => {
    const fx = ringVm({ vcpu: { emulateAllStores } });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueueLoads(gfns([1, 2]), { exitEach: true });
    prog.enqueue(gfns([3]));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_IO);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_IO);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(harvestAll(fx)).toEqual([3]);
    prog.enqueueLoads([SLOT_GFN + 5000]);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_MMIO);
  });

  it('a load queued behind a soft-full push waits for the reset like a store', () => {
    const fx = ringVm({ ringEntries: 256, vcpu: { emulateAllStores: true } });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns(range(0, 192)));
    prog.enqueueLoads(gfns([0]), { exitEach: true });
    expect(vcpu.run(prog)).toBe(KVM_EXIT_DIRTY_RING_FULL);
    expect(prog.remaining).toBe(1);
    harvestAll(fx);
    expect(fx.vm.resetDirtyRings()).toBe(192);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_IO);
    expect(fx.vm.ring(0)!.used()).toBe(0);
  });
});

describe('INITIALLY_SET with a ring (hardware path, from the kernel source)', () => {
  it('turning logging on does not write-protect: pages made writable while it was off are not logged', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3);
    vm.createMemslot({ id: 1, baseGfn: SLOT_GFN, pageCount: 16, logDirty: true });
    vm.createVcpu();
    const vcpu = new Vcpu(vm, 0);
    const prog = new ScriptedProgram();
    const fx = { vm } as ReturnType<typeof ringVm>;
    prog.enqueue(gfns([1]));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([1]);
    vm.setLogDirty(1, false);
    prog.enqueue(gfns([1, 2]));
    vcpu.run(prog);
    vm.setLogDirty(1, true);
    prog.enqueue(gfns([1, 2, 3]));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([3]);
    expect(vm.resetDirtyRings()).toBe(2);
    prog.enqueue(gfns([1, 2, 3]));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([1, 3]);
  });
});
