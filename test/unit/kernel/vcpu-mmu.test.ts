/**
 * The vCPU's write path, driven in this thread through KVM_RUN: the fault path (one entry per
 * page until reset), the emulated path (every store), and the fast fault's ordering.
 */
import { describe, expect, it } from 'vitest';
import { KVM_EXIT_HLT, KVM_EXIT_MMIO, PAGE_WORDS } from '../../../src/abi/constants.js';
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { Step, clearStepHook, installStepHook } from '../../../src/kernel/step-hook.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../helpers/vm-fixtures.js';
import { harvestAll } from './vcpu-harvest.js';

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

describe('the fast-fault ordering mutant', () => {
  /**
   * Store value 1 to page 8 with a harvest + reset interposed once, exactly in the fault's
   * window (before the compare-and-swap), as a controlled scheduler would.
   */
  function storeWithResetInWindow(fx: ReturnType<typeof ringVm>): void {
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
  }

  it('dirty-before-writable: a harvest + reset between the record and the CAS leaves the page writable and unrecorded', () => {
    const fx = ringVm({ vm: { mutants: Mutant.DIRTY_BEFORE_WRITABLE } });
    const [vcpu, prog] = [fx.vcpus[0]!, fx.programs[0]!];
    storeWithResetInWindow(fx);
    expect(Atomics.load(fx.slot.spte, 8)).toBe(1); // writable, with its record already consumed
    prog.enqueue(gfns([8]), { value: 2 });
    vcpu.run(prog);
    expect(fx.slot.mem32[8 * PAGE_WORDS]).toBe(2);
    expect(harvestAll(fx)).toEqual([]);
  });

  it('the correct order leaves a record after the same interleaving', () => {
    const fx = ringVm();
    storeWithResetInWindow(fx);
    expect(harvestAll(fx)).toEqual([8]);
  });
});
