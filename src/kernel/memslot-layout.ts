/**
 * The memslot table's entries and the per-page SPTE bits (kernel/memslots.ts). KVM looks slots
 * up by (as_id, id); the emulator keeps a fixed table of entries in shared memory so that vCPU
 * threads see changes, and each entry owns its buffers.
 */
import type { SharedBlock } from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

/** Entries in the emulator's memslot table (not KVM's id limit, which is KVM_USER_MEM_SLOTS). */
export const MEMSLOT_TABLE_ENTRIES = 64;

export const MemslotLayout = defineBlock(
  'memslot',
  [
    /** MemslotState. */
    'STATE',
    'AS_ID',
    'ID',
    /** KVM_MEM_* flags; LOG_DIRTY_PAGES can be toggled at run time. */
    'FLAGS',
    'NPAGES',
    'BASE_GFN_LO',
    'BASE_GFN_HI',
    /** Bumped on every change of this entry. */
    'GENERATION',
    /** 1 when the slot's dirty bitmap is allocated. */
    'HAS_BITMAP',
  ],
  [],
);
export type MemslotBlock = SharedBlock<keyof typeof MemslotLayout.words, never>;
export const MemslotState = { FREE: 0, ACTIVE: 1 } as const;

// ---------------------------------------------------------------------------------------------
// Per-page structures of a memslot.

/** One SPTE word per 4 KiB page: an Int32, so that Atomics can test and change its bits. */
export const SPTE_BYTES = 4;

/** Bits of a page's SPTE word. */
export const SpteBits = {
  /** The page can be written without a fault. 0 = write-protected (or not yet mapped). */
  WRITABLE: 1 << 0,
  /**
   * Page write-tracking (src/kernel/page-track.ts): the gfn's write-track count is
   * non-zero, so a write fault on it is never fixed — the store is emulated and notified. Set
   * and cleared under mmu_lock as the count goes 0→1 and 1→0; it plays the part of KVM's
   * cleared MMU-writable SPTE bit, which is what stops the fast-fault path from making a
   * tracked page writable. Dirty-log re-protection clears only WRITABLE and leaves it alone.
   */
  WRITE_TRACKED: 1 << 1,
} as const;

