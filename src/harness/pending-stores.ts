/**
 * The stores the final stop interrupted: a vCPU parked between a store's fault (its page
 * already recorded) and the store itself retries it in the next iteration, with the value it
 * loaded before the stop. The oracle accepts that value then (dirty_log_test's "prev_last" page).
 */
import type { PendingStore } from '../checker/oracle.js';
import { VcpuLayout } from '../kernel/vcpu-layout.js';
import type { Vm } from '../kernel/vm.js';

/** Read with every vCPU parked. */
export function pendingStores(vm: Vm, vcpuCount: number): PendingStore[] {
  const pending: PendingStore[] = [];
  for (let i = 0; i < vcpuCount; i++) {
    const b = vm.vcpuBlock(i);
    if (Atomics.load(b.i32, VcpuLayout.words.PENDING_VALID) === 1) {
      pending.push({ vcpu: i, gfn: b.f64[VcpuLayout.floats.PENDING_GFN]!, value: Atomics.load(b.i32, VcpuLayout.words.PENDING_VALUE) });
    }
  }
  return pending;
}
