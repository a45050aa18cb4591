/**
 * The vCPU's kernel side driven in this thread, deterministically: the fault path, one entry
 * per page until reset, soft-full exits, the TLB and its flush, kicks.
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
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../helpers/vm-fixtures.js';

function harvestAll(fx: ReturnType<typeof ringVm>, vcpu = 0, max = 1 << 20): number[] {
  const offsets: number[] = [];
  const cursor = cursors.get(fx.vm) ?? [];
  cursors.set(fx.vm, cursor);
  cursor[vcpu] ??= { fetchIndex: 0 };
  harvestRing(fx.vm.mmapRing(vcpu), cursor[vcpu]!, max, (_s, lo) => offsets.push(lo));
  return offsets;
}
const cursors = new WeakMap<object, { fetchIndex: number }[]>();

describe('the hardware write path', () => {
  it('logs one entry per page until that entry is reset', () => {
    const fx = ringVm();
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns([5, 5, 5, 9, 5, 9]));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(harvestAll(fx)).toEqual([5, 9]);
    // Harvested but not reset: the pages stay writable, no new entry.
    prog.enqueue(gfns([5, 9]));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(harvestAll(fx)).toEqual([]);
    // After the reset the pages are protected again: the next store pushes one new entry.
    expect(fx.vm.resetDirtyRings()).toBe(2);
    prog.enqueue(gfns([9, 9, 5]));
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(harvestAll(fx)).toEqual([9, 5]);
  });

  it('writes the dirty_log_test header: iteration, writer vCPU, sequence', () => {
    const fx = ringVm({ vcpus: 2 });
    fx.programs[1]!.enqueue(gfns([3]), { value: 42 });
    fx.vcpus[1]!.run(fx.programs[1]!);
    const base = 3 * PAGE_WORDS;
    expect(fx.slot.mem32[base + GuestPageWords.ITERATION_LO]).toBe(42);
    expect(fx.slot.mem32[base + GuestPageWords.WRITER_VCPU]).toBe(1);
    expect(fx.slot.mem32[base + GuestPageWords.WRITER_SEQ]).toBe(1);
  });

  it('the entry goes to the ring of the vCPU that faulted first; the second finds the page writable', () => {
    const fx = ringVm({ vcpus: 2 });
    fx.programs[0]!.enqueue(gfns([1, 2]));
    fx.programs[1]!.enqueue(gfns([2, 3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    fx.vcpus[1]!.run(fx.programs[1]!);
    expect(harvestAll(fx, 0)).toEqual([1, 2]);
    expect(harvestAll(fx, 1)).toEqual([3]);
  });

  it('a slot without LOG_DIRTY_PAGES pushes nothing; turning it on protects and logs again', () => {
    const fx = ringVm({ logDirty: false });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    prog.enqueue(gfns(range(0, 10)));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([]);
    fx.vm.setLogDirty(1, true);
    prog.enqueue(gfns([0, 1, 2, 3, 4]));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([0, 1, 2, 3, 4]);
    fx.vm.setLogDirty(1, false);
    fx.vm.resetDirtyRings();
    prog.enqueue(gfns([0, 1, 2]));
    vcpu.run(prog);
    expect(harvestAll(fx)).toEqual([]);
  });

  it('a store outside every memslot exits with KVM_EXIT_MMIO', () => {
    const fx = ringVm();
    fx.programs[0]!.enqueue([SLOT_GFN + 5000]);
    expect(fx.vcpus[0]!.run(fx.programs[0]!)).toBe(KVM_EXIT_MMIO);
  });
});

describe('the emulated path (kvm_vcpu_write_guest)', () => {
  it('logs every store, duplicates included, in order', () => {
    const fx = ringVm({ vcpu: { emulateAllStores: true } });
    fx.programs[0]!.enqueue(gfns([7, 3, 9, 1, 3, 7]));
    fx.programs[0]!.enqueue(gfns([5]), { storesPerPage: 3 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(harvestAll(fx)).toEqual([7, 3, 9, 1, 3, 7, 5, 5, 5]);
  });
});

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

describe('the fast-fault ordering mutant', () => {
  it('dirty-before-writable: a harvest + reset between the record and the CAS leaves the page writable and unrecorded', async () => {
    const { installStepHook, clearStepHook, Step } = await import('../../../src/kernel/step-hook.js');
    const fx = ringVm({ vm: { mutants: Mutant.DIRTY_BEFORE_WRITABLE } });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    // Interpose exactly in the window, as a controlled scheduler would.
    installStepHook((step) => {
      if (step === Step.FAULT_MAKE_WRITABLE) {
        harvestAll(fx);
        fx.vm.resetDirtyRings();
      }
    });
    try {
      prog.enqueue(gfns([8]), { value: 1 });
      vcpu.run(prog);
    } finally {
      clearStepHook();
    }
    expect(Atomics.load(fx.slot.spte, 8)).toBe(1); // writable, with its record already consumed
    prog.enqueue(gfns([8]), { value: 2 });
    vcpu.run(prog);
    expect(fx.slot.mem32[8 * PAGE_WORDS]).toBe(2);
    expect(harvestAll(fx)).toEqual([]);
  });

  it('the correct order leaves a record after the same interleaving', async () => {
    const { installStepHook, clearStepHook, Step } = await import('../../../src/kernel/step-hook.js');
    const fx = ringVm();
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    let fired = false;
    installStepHook((step) => {
      if (step === Step.FAULT_MAKE_WRITABLE && !fired) {
        fired = true;
        harvestAll(fx);
        fx.vm.resetDirtyRings();
      }
    });
    try {
      prog.enqueue(gfns([8]), { value: 1 });
      vcpu.run(prog);
    } finally {
      clearStepHook();
    }
    expect(harvestAll(fx)).toEqual([8]);
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
