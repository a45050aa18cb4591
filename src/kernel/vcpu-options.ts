/** The options of a vCPU's kernel side (`new Vcpu(vm, index, options)`) and their validation. */
import { KvmError } from '../abi/errno.js';
import { optionalBooleanArg, showArg, structArg, u16Arg } from './ioctl-args.js';

export interface VcpuOptions {
  /**
   * Log every store as KVM's instruction emulator does (kvm_vcpu_write_guest): the path of a
   * host that emulates the guest, like this machine's PVM. Default: the hardware fault path.
   */
  readonly emulateAllStores?: boolean;
  /**
   * Return EMU_EXIT_PREEMPTED after this many ms inside KVM_RUN, so the thread can service
   * its message port; 0 never preempts.
   */
  readonly preemptAfterMs?: number;
  /** Address space the vCPU starts in (0; 1 is SMM, on a VM with SMM). */
  readonly asId?: number;
}

/** Validate `options` fully (EINVAL naming the field) before the vCPU is built. */
export function checkVcpuOptions(options: VcpuOptions, addressSpaces: number): void {
  structArg(options, 'options');
  if (options.asId !== undefined && u16Arg(options.asId, 'options.asId') >= addressSpaces) {
    throw new KvmError('EINVAL', `address space ${options.asId} does not exist in this VM (${addressSpaces})`, 'options.asId');
  }
  optionalBooleanArg(options.emulateAllStores, 'options.emulateAllStores');
  const ms = options.preemptAfterMs;
  if (ms !== undefined && (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)) {
    throw new KvmError('EINVAL', `options.preemptAfterMs ${showArg(ms)} is not a duration in ms`, 'options.preemptAfterMs');
  }
}
