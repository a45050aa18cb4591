/**
 * What a vCPU executes: one decoded guest instruction at a time. A program decodes into a
 * reused Instruction object so that the run loop allocates nothing.
 */
import { KVM_DIRTY_RING_RSVD_ENTRIES } from '../abi/constants.js';

export const InsnKind = {
  /**
   * A hardware store to one page: goes through the TLB and SPTE, faults when the page is
   * write-protected, and is retried after the fault (and after any exit the fault leads to).
   */
  STORE: 1,
  /**
   * An emulated instruction (kvm_vcpu_write_guest): KVM performs every store itself and marks
   * each page dirty on every store, with no guest entry in between — so one instruction can
   * push several entries, which is what the ring's reserved entries are for.
   */
  EMULATED: 2,
  /** hlt: the program is over; KVM_RUN returns KVM_EXIT_HLT. */
  HALT: 3,
  /**
   * A load from one page (gfns[0]). Never logged on either path: no write fault, no
   * kvm_vcpu_write_guest. Outside every memslot it exits like a store (KVM_EXIT_MMIO).
   */
  LOAD: 4,
  /**
   * hlt with the guest's timer armed for `idleMs` (a paced guest waiting for its next write):
   * KVM blocks the vCPU in the kernel (kvm_vcpu_halt) until the timer fires or a request (a
   * kick) arrives, then re-enters the guest. Nothing is written. KVM_RUN does not return for
   * the halt itself, but the wake-up is a preemption point: past `preemptAfterMs` it returns
   * EMU_EXIT_PREEMPTED (a paced guest may never reach the every-1024-instructions check).
   */
  IDLE: 5,
  /**
   * An SMI: the vCPU enters System Management Mode, where its memslot lookups (and so its
   * dirty records) go to address space 1. Only a VM created with SMM has that address space.
   */
  SMI: 6,
  /** rsm: the vCPU leaves System Management Mode, back to address space 0. */
  RSM: 7,
} as const;

/** Pages one instruction may touch: never more than the ring's reserve. */
export const MAX_INSN_PAGES = KVM_DIRTY_RING_RSVD_ENTRIES;

export class Instruction {
  kind: number = InsnKind.HALT;
  /** The pages written, in order (gfns). */
  readonly gfns = new Float64Array(MAX_INSN_PAGES);
  count = 0;
  /** The value stored: the guest's register, loaded when the instruction was decoded. */
  value = 0;
  /** Stores per page (EMULATED only: each store is logged). */
  storesPerPage = 1;
  /** Leave KVM_RUN with KVM_EXIT_IO once the instruction has completed. */
  exitAfter = false;
  /** IDLE only: how long the guest's timer lets the vCPU sleep, in ms. */
  idleMs = 0;
}

export interface GuestProgram {
  /** Decode the next instruction into `insn`. */
  decode(insn: Instruction): void;
  /**
   * Optional block decode, for the store fast path: when the next instructions are plain
   * hardware stores (STORE, one page, no exitAfter) of one value — the guest's register, loaded
   * now — write the first `max` or fewer of them (their gfns, as a list or a strided run) and
   * that value to `block`, and return how many. Nothing is consumed: the vCPU executes a prefix of the block at once (no
   * exit in between) and calls `consumeStores` for that prefix, so an instruction it leaves is
   * decoded again later, its value loaded again. 0 (always allowed) sends the vCPU to `decode`.
   * A program that defines one of the two defines both.
   */
  peekStores?(block: StoreBlock, max: number): number;
  /** Skip the first `n` instructions of the last `peekStores` block (n ≤ its count), as `n` decodes would. */
  consumeStores?(n: number): void;
}

/** The most stores a block (GuestProgram.peekStores) is ever asked for. */
export const MAX_STORE_BLOCK = 16;

/**
 * A block of decoded plain stores, all of one value; the vCPU reuses one (allocation-free).
 * Two forms: a list (`stride` 0: store k is to gfns[k]) or a strided run (store k is to
 * first + k × stride — a guest loop over pages, decoded as one superinstruction).
 */
export class StoreBlock {
  readonly gfns = new Float64Array(MAX_STORE_BLOCK);
  first = 0;
  /** 0: the list form. */
  stride = 0;
  /** The value every store of the block writes. */
  value = 0;
}

/** A program with block decode (`GuestProgram.peekStores`). */
export type BlockGuestProgram = GuestProgram & Required<Pick<GuestProgram, 'peekStores' | 'consumeStores'>>;
