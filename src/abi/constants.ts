/**
 * KVM ABI constants the emulator mirrors (include/uapi/linux/kvm.h, virt/kvm/dirty_ring.c).
 * Values are the kernel's; docs/PROTOCOL.md, section 1, lists them with their meaning.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT; // 4 KiB guest pages
export const PAGE_WORDS = PAGE_SIZE >>> 2; // u32 words per page

/** `struct kvm_dirty_gfn` is 16 bytes: flags u32 @0, slot u32 @4, offset u64 @8. */
export const DIRTY_GFN_BYTES = 16;

export const KVM_DIRTY_GFN_F_DIRTY = 1;
export const KVM_DIRTY_GFN_F_RESET = 2;
export const KVM_DIRTY_GFN_F_MASK = 3;

/** Entries kept free after the soft limit, for pushes made before the vCPU can exit. */
export const KVM_DIRTY_RING_RSVD_ENTRIES = 64;
/** 65536 entries, i.e. 1 MiB per ring. */
export const KVM_DIRTY_RING_MAX_ENTRIES = 65536;
export const KVM_DIRTY_RING_MAX_BYTES = KVM_DIRTY_RING_MAX_ENTRIES * DIRTY_GFN_BYTES;
/** vCPU mmap offset of the ring, in pages (x86/arm64). */
export const KVM_DIRTY_LOG_PAGE_OFFSET = 64;

/** Exit reasons (kvm_run.exit_reason). */
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HLT = 5;
/** A guest access outside every memslot. */
export const KVM_EXIT_MMIO = 6;
/** KVM_RUN returned -EINTR because a signal (a kick) was pending. */
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_DIRTY_RING_FULL = 31;
/**
 * Not a KVM value: the emulator's own "the host scheduler preempted KVM_RUN" return, used so a
 * worker can service its message port. Userspace simply re-enters, as after a spurious EINTR.
 */
export const EMU_EXIT_PREEMPTED = 0x1000;

/**
 * Not a KVM value (page write-tracking): the vCPU's notification ring to userspace is
 * soft-full. Like exit 31, the thread stalls until userspace has drained the ring and wakes it.
 */
export const EMU_EXIT_TRACK_RING_FULL = 0x1001;

export const EXIT_REASON_NAMES: Readonly<Record<number, string>> = {
  [KVM_EXIT_IO]: 'io',
  [KVM_EXIT_HLT]: 'hlt',
  [KVM_EXIT_MMIO]: 'mmio',
  [KVM_EXIT_INTR]: 'intr',
  [KVM_EXIT_DIRTY_RING_FULL]: 'dirty_ring_full',
  [EMU_EXIT_PREEMPTED]: 'preempted',
  [EMU_EXIT_TRACK_RING_FULL]: 'track_ring_full',
};

/** Capability numbers. */
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
export const KVM_CAP_DIRTY_LOG_RING = 192;
export const KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223;
export const KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP = 225;
/** How many address spaces a VM has (x86: 2 with SMM; 0 from a kernel built without SMM). */
export const KVM_CAP_MULTI_ADDRESS_SPACE = 118;

export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1;
export const KVM_DIRTY_LOG_INITIALLY_SET = 2;

/** Memslot flags. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

/** x86 limits. */
export const KVM_USER_MEM_SLOTS = 32764;
export const KVM_MEM_MAX_NR_PAGES = 0x7fffffff; // 2^31 - 1
/**
 * Address spaces of a VM without SMM (x86 built without CONFIG_KVM_SMM, like the host the
 * fidelity expectations were recorded on: it answers KVM_CAP_MULTI_ADDRESS_SPACE with 0).
 */
export const KVM_ADDRESS_SPACE_NUM = 1;
/** Address spaces of an x86 VM with SMM: as_id 1 is what a vCPU in System Management Mode sees. */
export const KVM_ADDRESS_SPACE_NUM_SMM = 2;
/** The as_id of the SMM address space. */
export const SMM_AS_ID = 1;
export const INT_MAX = 0x7fffffff;

/** u64 ABI values (ring offsets, gfns) are held as two u32 halves: value = hi × U32_RANGE + lo. */
export const U32_RANGE = 2 ** 32;
export const U32_BITS = 32;

/** The `slot` field holds the address space above this bit, the slot id below it. */
const SLOT_AS_ID_SHIFT = 16;
const SLOT_ID_MASK = (1 << SLOT_AS_ID_SHIFT) - 1;

/** `slot` field encoding everywhere: (as_id << 16) | id. */
export function encodeSlot(asId: number, id: number): number {
  return ((asId << SLOT_AS_ID_SHIFT) | (id & SLOT_ID_MASK)) >>> 0;
}
export function slotAsId(encoded: number): number {
  return encoded >>> SLOT_AS_ID_SHIFT;
}
export function slotId(encoded: number): number {
  return encoded & SLOT_ID_MASK;
}
