/**
 * A vCPU thread under the controlled scheduler — what userspace/vcpu-thread.ts does in free
 * runs, with every wait turned into a park: parked outside KVM_RUN until CONTROL says run;
 * after exit 31 or hlt, parked until userspace wakes it (or stops wanting it to run). Inside
 * KVM_RUN the kernel's own step hooks park it. No clock is read and nothing spins.
 */
import { EMU_EXIT_PREEMPTED, KVM_EXIT_DIRTY_RING_FULL, KVM_EXIT_HLT, KVM_EXIT_INTR } from '../../abi/constants.js';
import { VcpuControl, VcpuLayout, VcpuState } from '../../kernel/vcpu-layout.js';
import { VmLayout } from '../../kernel/vm-layout.js';
import { Vcpu } from '../../kernel/vcpu.js';
import type { Vm } from '../../kernel/vm.js';
import { ControlStep } from './control-steps.js';
import { dataSlots } from './controlled-vm.js';
import { RoundProgram } from './round-program.js';
import { pageLedgerViews } from './ledger-layout.js';
import type { ControlledScenario } from './scenario.js';
import { slotLayout } from './scenario-slots.js';

const W = VcpuLayout.words;

export type Park = (step: number, a: number, b: number) => void;

export function runVcpuParticipant(vm: Vm, index: number, scenario: ControlledScenario, globals: Int32Array, ledger: SharedArrayBuffer, park: Park): void {
  const vcpu = new Vcpu(vm, index, { emulateAllStores: scenario.emulated, preemptAfterMs: 0 });
  const slot = dataSlots(vm, scenario)[0]!;
  // The per-step invariant must know which pages this vCPU could still store to without a fault.
  vcpu.tlb.attachMirror(pageLedgerViews(ledger, slot.pageCount, scenario.vcpus).tlb[index]!, slot.baseGfn);
  const program = new RoundProgram(scenario.stores[index]!, slot.baseGfn, globals, slotLayout(scenario).smmFrom);
  const w = vcpu.block.i32;
  const vmWords = vm.block.i32;
  const setState = (state: number): void => {
    Atomics.store(w, W.STATE, state);
    // Userspace waits for vCPU state changes on the doorbell.
    Atomics.add(vmWords, VmLayout.words.DOORBELL, 1);
  };
  try {
    for (;;) {
      const control = Atomics.load(w, W.CONTROL);
      if (control === VcpuControl.TERMINATE) break;
      if (control === VcpuControl.PAUSE) {
        setState(VcpuState.PARKED);
        park(ControlStep.VCPU_WAIT_RUN, Atomics.load(w, W.WAKE), 0);
        continue;
      }
      if (Atomics.load(w, W.STATE) !== VcpuState.RUNNING) setState(VcpuState.RUNNING);
      const exit = vcpu.run(program);
      if (exit === KVM_EXIT_DIRTY_RING_FULL || exit === KVM_EXIT_HLT) {
        const seq = Atomics.load(w, W.WAKE);
        setState(exit === KVM_EXIT_HLT ? VcpuState.HALTED : VcpuState.RING_FULL_STALL);
        park(ControlStep.VCPU_WAIT_WAKE, seq, 0);
      } else if (exit !== KVM_EXIT_INTR && exit !== EMU_EXIT_PREEMPTED) {
        throw new Error(`vCPU ${index}: unexpected exit reason ${exit}`);
      }
    }
  } finally {
    vcpu.publishStats();
    setState(VcpuState.DEAD);
  }
}
