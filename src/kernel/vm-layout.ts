/**
 * The VM's shared block: capabilities, locks and counters every thread sees (kernel/vm.ts).
 */
import type { SharedBlock } from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

export const VmLayout = defineBlock(
  'vm',
  [
    /** Dirty ring size in bytes; 0 = no ring (bitmap logging). */
    'RING_BYTES',
    /** 1 when the ring was enabled through KVM_CAP_DIRTY_LOG_RING_ACQ_REL. */
    'RING_ACQ_REL',
    /** 1 after KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP. */
    'RING_WITH_BITMAP',
    /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 flags (1 enable, 2 initially set). */
    'MANUAL_PROTECT',
    /** vCPUs created (kvm->created_vcpus). */
    'CREATED_VCPUS',
    /** The mmu_lock (a futex-style mutex word: 0 free, 1 held, 2 held with waiters). */
    'MMU_LOCK',
    /** The slots_lock mutex word. */
    'SLOTS_LOCK',
    /** Bumped (and notified) whenever a vCPU changes state; userspace waits on it. */
    'DOORBELL',
    /** Memslot generation, bumped on every memslot change. */
    'MEMSLOTS_GEN',
    /** Bitmask of enabled kernel mutants (known kernel bugs, kernel/mutants.ts). */
    'MUTANTS',
    /** Kernel WARN count (e.g. a push into a full ring, a write with no vCPU and no bitmap). */
    'WARNINGS',
    /** kvm_arch_nr_memslot_as_ids: 1, or 2 for a VM with SMM (VmOptions.smm). Set at creation. */
    'ADDRESS_SPACES',
  ],
  [
    'MMU_LOCK_ACQUIRES',
    'MMU_LOCK_HOLD_TOTAL_NS',
    'MMU_LOCK_HOLD_MAX_NS',
    'SLOTS_LOCK_HOLD_TOTAL_NS',
    'RESET_CALLS',
    'ENTRIES_RESET',
    /** Coalesced reset batches skipped because their slot or offset was invalid. */
    'RESET_BATCHES_SKIPPED',
    /** Pages re-protected by reset, GET or CLEAR. */
    'PAGES_REPROTECTED',
    'TLB_FLUSHES',
    'TLB_FLUSH_WAIT_NS',
    /** Accesses that a correct kernel never makes (e.g. an out-of-bounds rmap index). */
    'KERNEL_BUGS',
    /** mmu_lock hold per ioctl kind: total and longest single hold, in ns. */
    'MMU_HOLD_GET_TOTAL_NS',
    'MMU_HOLD_GET_MAX_NS',
    'MMU_HOLD_CLEAR_TOTAL_NS',
    'MMU_HOLD_CLEAR_MAX_NS',
    'MMU_HOLD_RESET_TOTAL_NS',
    'MMU_HOLD_RESET_MAX_NS',
    'GET_CALLS',
    'CLEAR_CALLS',
    /** Writes made with no running vCPU that nothing could log (ring VM without bitmap). */
    'NO_VCPU_WRITES_LOST',
  ],
);
export type VmBlock = SharedBlock<keyof typeof VmLayout.words, keyof typeof VmLayout.floats>;
