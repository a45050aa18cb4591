/**
 * Userspace's system calls as scheduling points. The collectors are the ones free runs use
 * (userspace/log-collectors.ts and the harvester variants) and know nothing of the scheduler;
 * shadowing the three dirty-logging ioctls on userspace's own Vm object — one instance, in the
 * userspace participant's thread — makes each ioctl entry a point where the scheduler may let
 * the vCPUs run, as a real harvester can be preempted between KVM_GET_DIRTY_LOG and
 * KVM_CLEAR_DIRTY_LOG. The kernel code is not touched.
 */
import type { Vm } from '../../kernel/vm.js';
import { ControlStep, UserIoctl } from './control-steps.js';
import type { Park } from './vcpu-participant.js';

export function interposeIoctls(vm: Vm, park: Park): void {
  const get = vm.getDirtyLog.bind(vm);
  const clear = vm.clearDirtyLog.bind(vm);
  const reset = vm.resetDirtyRings.bind(vm);
  vm.getDirtyLog = (slot, out) => {
    park(ControlStep.USER_IOCTL, UserIoctl.GET_DIRTY_LOG, slot);
    get(slot, out);
  };
  vm.clearDirtyLog = (slot, firstPage, numPages, mask) => {
    park(ControlStep.USER_IOCTL, UserIoctl.CLEAR_DIRTY_LOG, firstPage);
    clear(slot, firstPage, numPages, mask);
  };
  vm.resetDirtyRings = (signalPending) => {
    park(ControlStep.USER_IOCTL, UserIoctl.RESET_DIRTY_RINGS, 0);
    return reset(signalPending);
  };
}
