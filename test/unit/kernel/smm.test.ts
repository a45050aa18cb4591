/**
 * The SMM address space (VmOptions.smm): memslots, bitmaps and ring entries of address space 1,
 * and a vCPU that enters and leaves System Management Mode. Without SMM, as_id 1 stays EINVAL.
 */
import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_MULTI_ADDRESS_SPACE,
  KVM_EXIT_HLT,
  KVM_EXIT_MMIO,
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SIZE,
  PAGE_WORDS,
  SMM_AS_ID,
  encodeSlot,
} from '../../../src/abi/constants.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { errnoOf } from '../../helpers/errno.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';

const RAM_GFN = 0x40000;
const SMRAM_GFN = 0x80000;

/** A ring VM with SMM: RAM slot 1 in address space 0, SMRAM slot 1 in address space 1. */
function smmRingVm() {
  const vm = Vm.create({ smm: true });
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 256 * 16);
  const ram = vm.createMemslot({ id: 1, baseGfn: RAM_GFN, pageCount: 16, logDirty: true });
  const smram = vm.createMemslot({ id: 1, asId: SMM_AS_ID, baseGfn: SMRAM_GFN, pageCount: 8, logDirty: true });
  vm.createVcpu();
  return { vm, ram, smram, vcpu: new Vcpu(vm, 0), prog: new ScriptedProgram() };
}

describe('a VM without SMM (the observed host)', () => {
  it('has one address space: as_id 1 is EINVAL for memslots and GET, and the cap says 0', () => {
    const vm = Vm.create();
    expect(vm.addressSpaces).toBe(1);
    expect(vm.checkExtension(KVM_CAP_MULTI_ADDRESS_SPACE)).toBe(0);
    const region = { slot: encodeSlot(1, 0), flags: KVM_MEM_LOG_DIRTY_PAGES, guestPhysAddr: 0, memorySize: PAGE_SIZE };
    expect(errnoOf(() => vm.setUserMemoryRegion(region))).toBe('EINVAL');
    expect(errnoOf(() => vm.getDirtyLog(encodeSlot(1, 0), new Uint32Array(2)))).toBe('EINVAL');
  });

  it('refuses an SMI: the program is wrong, there is nothing to switch to', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 0, baseGfn: RAM_GFN, pageCount: 4 });
    vm.createVcpu();
    expect(() => new Vcpu(vm, 0).run(new ScriptedProgram().enqueueSmm(true))).toThrow(/no SMM address space/);
  });
});

describe('a VM with SMM', () => {
  it('has two address spaces; one slot id may exist in both, and as_id 2 is still EINVAL', () => {
    const { vm, ram, smram } = smmRingVm();
    expect(vm.addressSpaces).toBe(2);
    expect(vm.checkExtension(KVM_CAP_MULTI_ADDRESS_SPACE)).toBe(2);
    expect(ram.encodedSlot).toBe(1);
    expect(smram.encodedSlot).toBe((1 << 16) | 1);
    const region = { slot: encodeSlot(2, 1), flags: 0, guestPhysAddr: 0, memorySize: PAGE_SIZE };
    expect(errnoOf(() => vm.setUserMemoryRegion(region))).toBe('EINVAL');
  });

  it('a vCPU in SMM sees only address space 1; its records carry as_id 1 and a reset re-protects them', () => {
    const { vm, smram, vcpu, prog } = smmRingVm();
    // Outside SMM the SMRAM gfn is in no memslot of address space 0.
    expect(vcpu.run(new ScriptedProgram().enqueue([SMRAM_GFN]))).toBe(KVM_EXIT_MMIO);
    prog.enqueueSmm(true).enqueue([SMRAM_GFN + 2, SMRAM_GFN + 5]).enqueueSmm(false).enqueue([RAM_GFN + 2]);
    expect(vcpu.run(prog)).toBe(KVM_EXIT_HLT);
    expect(vcpu.addressSpace).toBe(0);
    const ring = vm.mmapRing(0);
    const entries: [number, number][] = [];
    expect(harvestRing(ring, { fetchIndex: 0 }, 10, (slot, off) => entries.push([slot, off]))).toBe(3);
    expect(entries).toEqual([
      [(1 << 16) | 1, 2],
      [(1 << 16) | 1, 5],
      [1, 2],
    ]);
    expect(smram.mem32[2 * PAGE_WORDS]).toBe(1);
    expect(Atomics.load(smram.spte, 2) & SpteBits.WRITABLE).toBe(SpteBits.WRITABLE);
    expect(vm.resetDirtyRings()).toBe(3);
    expect(Atomics.load(smram.spte, 2) & SpteBits.WRITABLE).toBe(0);
    expect(Atomics.load(smram.spte, 5) & SpteBits.WRITABLE).toBe(0);
    expect(vm.stats().resetBatchesSkipped).toBe(0);
  });

  it('GET and CLEAR name the SMRAM slot with as_id 1', () => {
    const vm = Vm.create({ smm: true });
    vm.createMemslot({ id: 0, baseGfn: RAM_GFN, pageCount: 64, logDirty: true });
    const smram = vm.createMemslot({ id: 0, asId: SMM_AS_ID, baseGfn: SMRAM_GFN, pageCount: 64, logDirty: true });
    vm.createVcpu();
    const prog = new ScriptedProgram().enqueueSmm(true).enqueue([SMRAM_GFN + 40]).enqueueSmm(false);
    expect(new Vcpu(vm, 0).run(prog)).toBe(KVM_EXIT_HLT);
    const ram = new Uint32Array(2);
    vm.getDirtyLog(encodeSlot(0, 0), ram);
    expect([...ram]).toEqual([0, 0]);
    const out = new Uint32Array(2);
    vm.getDirtyLog(encodeSlot(SMM_AS_ID, 0), out);
    expect([...out]).toEqual([0, 1 << 8]);
    expect(Atomics.load(smram.spte, 40) & SpteBits.WRITABLE).toBe(0);
  });
});
