/**
 * Which parked participants may move. A participant parked at an ordinary step may always
 * move; one parked at a wait may move only once the condition it waits for holds, read from
 * the same shared words its own code would read. So a granted participant never spins, and a
 * run where nobody may move is a real deadlock of the modelled code, not of the harness.
 */
import { VcpuControl, VcpuLayout, VcpuMode, VcpuState } from '../../kernel/vcpu-layout.js';
import { VmLayout } from '../../kernel/vm-layout.js';
import { Step } from '../../kernel/step-hook.js';
import type { Vm } from '../../kernel/vm.js';
import { ControlStep } from './control-steps.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';

const W = VcpuLayout.words;
const S = UserspaceSharedLayout.words;

/** What the conditions read: the VM, and the userspace threads' shared words. */
export interface EnabledContext {
  readonly vm: Vm;
  readonly vcpus: number;
  readonly shared: Int32Array;
}

export function isStepEnabled(ctx: EnabledContext, participant: number, step: number, a: number): boolean {
  const { vm, vcpus } = ctx;
  switch (step) {
    case Step.TLB_FLUSH_WAIT: {
      // kvm_make_all_cpus_request(..., wait): every vCPU is outside guest mode or has acknowledged.
      for (let i = 0; i < vcpus; i++) {
        const w = vm.vcpuBlock(i).i32;
        if (Atomics.load(w, W.MODE) === VcpuMode.IN_GUEST && (Atomics.load(w, W.REQUESTS) & a) !== 0) return false;
      }
      return true;
    }
    case Step.LOCK_WAIT:
      return Atomics.load(vm.block.i32, a) === 0;
    case ControlStep.VCPU_WAIT_RUN:
      return Atomics.load(vm.vcpuBlock(participant - 1).i32, W.CONTROL) !== VcpuControl.PAUSE;
    case ControlStep.VCPU_WAIT_WAKE: {
      const w = vm.vcpuBlock(participant - 1).i32;
      return Atomics.load(w, W.WAKE) !== a || Atomics.load(w, W.CONTROL) !== VcpuControl.RUN;
    }
    case ControlStep.USER_WAIT_PROGRESS:
      return Atomics.load(vm.block.i32, VmLayout.words.DOORBELL) !== a;
    case ControlStep.USER_WAIT_RESET_DONE:
      return Atomics.load(ctx.shared, S.RESET_DONE) >= a;
    case ControlStep.RESETTER_WAIT_REQUEST:
      return Atomics.load(ctx.shared, S.RESET_REQUEST) !== a || Atomics.load(ctx.shared, S.TERMINATE) !== 0;
    case ControlStep.USER_WAIT_HARVESTERS:
      return Atomics.load(ctx.shared, S.HARVESTS_DONE) >= a || Atomics.load(ctx.shared, S.HARVEST_FAILED) !== 0;
    case ControlStep.HARVESTER_WAIT_REQUEST:
      return Atomics.load(ctx.shared, S.HARVEST_REQUEST) !== a || Atomics.load(ctx.shared, S.TERMINATE) !== 0;
    case ControlStep.HARVESTER_BARRIER:
      return Atomics.load(ctx.shared, S.HARVEST_BARRIER_GEN) !== a || Atomics.load(ctx.shared, S.TERMINATE) !== 0;
    case ControlStep.USER_WAIT_PARKED: {
      for (let i = 0; i < vcpus; i++) {
        const s = Atomics.load(vm.vcpuBlock(i).i32, W.STATE);
        if (s !== VcpuState.PARKED && s !== VcpuState.DEAD) return false;
      }
      return true;
    }
    default:
      return true;
  }
}
