/**
 * One vCPU's shared block: the kernel's private ring indices, requests and mode (kernel/vcpu.ts),
 * plus the userspace vCPU-thread control words (QEMU's side of the vCPU thread) and statistics.
 */
import type { SharedBlock } from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

export const VcpuLayout = defineBlock(
  'vcpu',
  [
    'VCPU_ID',
    /** OUTSIDE_GUEST_MODE / IN_GUEST_MODE (vcpu->mode). */
    'MODE',
    /** Pending requests, a bitmask of VcpuRequest (vcpu->requests). */
    'REQUESTS',
    /**
     * Bumped by every post to REQUESTS (kvm_make_request). Posting a bit that is already set
     * leaves REQUESTS unchanged, yet still publishes what the requester did before it (the
     * smp_wmb in kvm_make_request): this count is what makes every post an observable change.
     */
    'REQUEST_POSTS',
    /** ring->dirty_index: written by the vCPU thread only. */
    'DIRTY_INDEX',
    /** ring->reset_index: written by KVM_RESET_DIRTY_RINGS in the caller's thread. */
    'RESET_INDEX',
    /** What userspace wants this vCPU thread to do: VcpuControl. */
    'CONTROL',
    /** Bumped by userspace to wake the vCPU thread (resume after a stall, new control). */
    'WAKE',
    /** What the vCPU thread is doing: VcpuState. */
    'STATE',
    /** The last exit reason KVM_RUN returned. */
    'EXIT_REASON',
    /** 1 when an instruction was interrupted by an exit and will be retried on re-entry. */
    'PENDING_VALID',
    /** The value the pending instruction will store (its "register"), i.e. an iteration. */
    'PENDING_VALUE',
  ],
  [
    /** gfn of the pending instruction's page (exact up to 2^53). */
    'PENDING_GFN',
    'INSTRUCTIONS',
    'STORES',
    'FAULTS',
    'SPURIOUS_FAULTS',
    'PUSHES',
    'RING_FULL_EXITS',
    'INTR_EXITS',
    'PREEMPTIONS',
    'STALL_NS',
    'STALL_MAX_NS',
    'TLB_FLUSHES',
    'RUN_NS',
  ],
);
export type VcpuBlock = SharedBlock<keyof typeof VcpuLayout.words, keyof typeof VcpuLayout.floats>;

/** vcpu->mode. */
export const VcpuMode = { OUTSIDE_GUEST: 0, IN_GUEST: 1 } as const;

/** Bits of the REQUESTS word. */
export const VcpuRequest = {
  /** Leave guest mode and return from KVM_RUN (a signal: -EINTR). */
  KICK: 1 << 0,
  /** Flush the software TLB before the next guest instruction. */
  TLB_FLUSH: 1 << 1,
  /** Memslots changed: drop cached slot lookups. */
  MEMSLOTS_UPDATED: 1 << 2,
  /**
   * Page write-tracking: this vCPU's notification ring to userspace is soft-full;
   * KVM_RUN returns EMU_EXIT_TRACK_RING_FULL at the next guest entry (src/pagetrack/notification-ring.ts).
   */
  TRACK_RING_FULL: 1 << 3,
} as const;

/** CONTROL word values, written by userspace. */
export const VcpuControl = { PAUSE: 0, RUN: 1, TERMINATE: 2 } as const;

/** STATE word values, written by the vCPU thread. */
export const VcpuState = {
  /** Not started yet. */
  NEW: 0,
  /** Waiting for CONTROL = RUN, outside KVM_RUN. */
  PARKED: 1,
  /** Inside the KVM_RUN loop. */
  RUNNING: 2,
  /** Returned from KVM_RUN with exit 31 and blocked until userspace wakes it. */
  RING_FULL_STALL: 3,
  /** The guest program halted (end of a finite program). */
  HALTED: 4,
  /** The thread ended (terminated or crashed). */
  DEAD: 5,
} as const;
export const VCPU_STATE_NAMES = ['new', 'parked', 'running', 'ring-full-stall', 'halted', 'dead'] as const;
