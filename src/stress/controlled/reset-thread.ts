/**
 * A reset thread: the second userspace participant (R) of a controlled run whose scenario asks
 * for one. It waits for the harvester's request, calls KVM_RESET_DIRTY_RINGS in its own
 * thread (the kernel's reset walk runs on R's CPU), and reports the count. The harvester's side
 * is ResetThreadClient: ask, keep harvesting if it likes, wait for the answer.
 *
 * This is the shape of QEMU's 2022 bug: the thread in the ioctl synchronizes with the
 * harvester only at the request, so entries the harvester marks RESET while the walk runs
 * reach the walk through their flags alone — which is only enough if RESET is stored with
 * release semantics and loaded with acquire semantics.
 */
import type { Vm } from '../../kernel/vm.js';
import { ControlStep } from './control-steps.js';
import { interposeIoctls } from './ioctl-points.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';
import type { Park } from './vcpu-participant.js';

const S = UserspaceSharedLayout.words;

/** R's program: serve reset requests until the harvester terminates the run. */
export function runResetThread(vm: Vm, shared: Int32Array, park: Park): void {
  interposeIoctls(vm, park);
  let seen = 0;
  for (;;) {
    park(ControlStep.RESETTER_WAIT_REQUEST, seen, 0);
    if (Atomics.load(shared, S.TERMINATE) !== 0) return;
    seen = Atomics.load(shared, S.RESET_REQUEST);
    const count = vm.resetDirtyRings();
    Atomics.store(shared, S.RESET_COUNT, count);
    Atomics.store(shared, S.RESET_DONE, seen);
  }
}

/** The harvester's side of the reset thread. */
export class ResetThreadClient {
  constructor(
    private readonly shared: Int32Array,
    readonly parkFn: Park,
  ) {}

  /** Ask for one reset; returns its ticket. */
  request(): number {
    return Atomics.add(this.shared, S.RESET_REQUEST, 1) + 1;
  }

  /** Wait until the reset of `ticket` has returned; its count. */
  wait(ticket: number): number {
    this.parkFn(ControlStep.USER_WAIT_RESET_DONE, ticket, 0);
    return Atomics.load(this.shared, S.RESET_COUNT);
  }

  /** The run is over: the reset thread ends at its next wait. */
  terminate(): void {
    Atomics.store(this.shared, S.TERMINATE, 1);
  }
}
