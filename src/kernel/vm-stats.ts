/**
 * The VM-wide statistics: a snapshot of the VM block's counters (`Vm.stats`), and how an ioctl
 * charges its mmu_lock hold to its own kind. The counters are Float64 words of the VM block
 * (vm-layout.ts), written by whoever holds the lock or runs the ioctl.
 */
import type { SharedMutex } from './sync.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';
import { NS_PER_MS, NS_PER_US } from '../base/clock.js';

const VM_FLOATS = VmLayout.floats;

export interface VmStats {
  resetCalls: number;
  entriesReset: number;
  resetBatchesSkipped: number;
  pagesReprotected: number;
  tlbFlushes: number;
  tlbFlushWaitMs: number;
  mmuLockAcquires: number;
  mmuLockTotalHoldUs: number;
  mmuLockMaxHoldUs: number;
  kernelBugs: number;
  warnings: number;
  getCalls: number;
  clearCalls: number;
  mmuHoldGetTotalUs: number;
  mmuHoldGetMaxUs: number;
  mmuHoldClearTotalUs: number;
  mmuHoldClearMaxUs: number;
  mmuHoldResetTotalUs: number;
  mmuHoldResetMaxUs: number;
  noVcpuWritesLost: number;
}

/** Snapshot of the VM-wide statistics. */
export function readVmStats(vm: VmCore): VmStats {
  const f = vm.block.f64;
  return {
    resetCalls: f[VM_FLOATS.RESET_CALLS]!,
    entriesReset: f[VM_FLOATS.ENTRIES_RESET]!,
    resetBatchesSkipped: f[VM_FLOATS.RESET_BATCHES_SKIPPED]!,
    pagesReprotected: f[VM_FLOATS.PAGES_REPROTECTED]!,
    tlbFlushes: f[VM_FLOATS.TLB_FLUSHES]!,
    tlbFlushWaitMs: f[VM_FLOATS.TLB_FLUSH_WAIT_NS]! / NS_PER_MS,
    mmuLockAcquires: f[VM_FLOATS.MMU_LOCK_ACQUIRES]!,
    mmuLockTotalHoldUs: f[VM_FLOATS.MMU_LOCK_HOLD_TOTAL_NS]! / NS_PER_US,
    mmuLockMaxHoldUs: f[VM_FLOATS.MMU_LOCK_HOLD_MAX_NS]! / NS_PER_US,
    kernelBugs: f[VM_FLOATS.KERNEL_BUGS]!,
    warnings: vm.warnings,
    getCalls: f[VM_FLOATS.GET_CALLS]!,
    clearCalls: f[VM_FLOATS.CLEAR_CALLS]!,
    mmuHoldGetTotalUs: f[VM_FLOATS.MMU_HOLD_GET_TOTAL_NS]! / NS_PER_US,
    mmuHoldGetMaxUs: f[VM_FLOATS.MMU_HOLD_GET_MAX_NS]! / NS_PER_US,
    mmuHoldClearTotalUs: f[VM_FLOATS.MMU_HOLD_CLEAR_TOTAL_NS]! / NS_PER_US,
    mmuHoldClearMaxUs: f[VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS]! / NS_PER_US,
    mmuHoldResetTotalUs: f[VM_FLOATS.MMU_HOLD_RESET_TOTAL_NS]! / NS_PER_US,
    mmuHoldResetMaxUs: f[VM_FLOATS.MMU_HOLD_RESET_MAX_NS]! / NS_PER_US,
    noVcpuWritesLost: f[VM_FLOATS.NO_VCPU_WRITES_LOST]!,
  };
}

/**
 * Charge the last mmu_lock hold to one ioctl kind — its total and maximum words, e.g.
 * MMU_HOLD_RESET_TOTAL_NS and MMU_HOLD_RESET_MAX_NS — on the same terms as the lock's own
 * statistics (a sampled hold counts its scaled share, an unsampled one nothing), so that the
 * per-kind totals add up to at most the lock's total.
 */
export function chargeMmuHold(f64: Float64Array, lock: SharedMutex, totalIndex: number, maxIndex: number): void {
  f64[totalIndex]! += lock.lastHoldNs;
  if (lock.lastHoldMeasuredNs > f64[maxIndex]!) f64[maxIndex] = lock.lastHoldMeasuredNs;
}

/** Count pages whose SPTE a reset, GET or CLEAR made read-only again. */
export function countReprotected(vm: VmCore, pages: number): void {
  vm.block.f64[VM_FLOATS.PAGES_REPROTECTED]! += pages;
}
