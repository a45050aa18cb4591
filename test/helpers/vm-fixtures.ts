/** Single-threaded fixtures: a VM, slots and vCPUs driven from the test's own thread. */
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, PAGE_SIZE } from '../../src/abi/constants.js';
import { ScriptedProgram } from '../../src/guest/scripted.js';
import type { Memslot } from '../../src/kernel/memslots.js';
import { Vcpu, type VcpuOptions } from '../../src/kernel/vcpu.js';
import { Vm, type VmOptions } from '../../src/kernel/vm.js';

export const SLOT_GFN = (1 << 30) / PAGE_SIZE;

export interface RingVmFixture {
  vm: Vm;
  slot: Memslot;
  vcpus: Vcpu[];
  programs: ScriptedProgram[];
}

/** A VM with a ring of `ringEntries`, one logged slot (id 1) of `pages`, and `vcpus` vCPUs. */
export function ringVm(
  opts: { ringEntries?: number; pages?: number; vcpus?: number; logDirty?: boolean; vm?: VmOptions; vcpu?: VcpuOptions } = {},
): RingVmFixture {
  const vm = Vm.create(opts.vm ?? {});
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, (opts.ringEntries ?? 256) * 16);
  const slot = vm.createMemslot({ id: 1, baseGfn: SLOT_GFN, pageCount: opts.pages ?? 1024, logDirty: opts.logDirty ?? true });
  const vcpus: Vcpu[] = [];
  const programs: ScriptedProgram[] = [];
  for (let i = 0; i < (opts.vcpus ?? 1); i++) {
    vm.createVcpu();
    vcpus.push(new Vcpu(vm, i, opts.vcpu ?? {}));
    programs.push(new ScriptedProgram());
  }
  return { vm, slot, vcpus, programs };
}

export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** gfns of pages `offsets` in slot 1. */
export function gfns(offsets: readonly number[]): number[] {
  return offsets.map((o) => SLOT_GFN + o);
}
