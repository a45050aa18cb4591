/**
 * One thread's coverage block (kernel/coverage.ts): a counter per edge state of the dirty-log
 * structures, bumped by that thread alone with plain stores and summed by the run once every
 * thread has ended (after the Atomics hand-off that ends a run, so plain reads see them).
 * A run's coverage buffer is one block per thread, back to back.
 */
import type { SharedBlock } from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

export const CoverageLayout = defineBlock(
  'coverage',
  [],
  [
    // Ring entries by position: index & (size − 1) is 0 or size − 1, or the free-running
    // index is past the first lap (the entry is being reused). Per side: push, harvest, reset.
    'RING_PUSH_FIRST',
    'RING_PUSH_LAST',
    'RING_PUSH_LAP',
    'RING_HARVEST_FIRST',
    'RING_HARVEST_LAST',
    'RING_HARVEST_LAP',
    'RING_RESET_FIRST',
    'RING_RESET_LAST',
    'RING_RESET_LAP',
    /** A push left the ring soft-full (used ≥ size − reserve). */
    'RING_SOFT_FULL',
    /** A reset walk consumed entries and stopped before dirty_index (pushed entries remain). */
    'RING_RESET_MID_RING',
    // The reset walk's coalescing (ResetBatch.add) and its batches.
    'COALESCE_FORWARD',
    'COALESCE_BACKWARD',
    /** A batch re-protected with bits in the high half of its 64-bit mask. */
    'COALESCE_MASK_HIGH',
    /** An open batch flushed because the next entry names another slot. */
    'COALESCE_BREAK_SLOT',
    /** ...because the next entry of the same slot lies 64 pages or more away. */
    'COALESCE_BREAK_FAR',
    // Bitmap words: the half of a 64-page word a bit is in; the first or last 64-page word of a
    // slot of several words; the short last word of a slot whose page count is no multiple of 64.
    'BITMAP_SET_LOW',
    'BITMAP_SET_HIGH',
    'BITMAP_GET_LOW',
    'BITMAP_GET_HIGH',
    'BITMAP_GET_FIRST_WORD',
    'BITMAP_GET_LAST_WORD',
    'BITMAP_GET_ODD_TAIL',
    'BITMAP_CLEAR_LOW',
    'BITMAP_CLEAR_HIGH',
    'BITMAP_CLEAR_FIRST_WORD',
    'BITMAP_CLEAR_LAST_WORD',
    'BITMAP_CLEAR_ODD_TAIL',
    // KVM_CLEAR_DIRTY_LOG ranges (a collector's chunks).
    /** A CLEAR starting past page 0 cleared the bit of its first page. */
    'CLEAR_CHUNK_FIRST_PAGE',
    /** A CLEAR ending before the slot's end cleared the bit of its last page. */
    'CLEAR_CHUNK_LAST_PAGE',
    /** A CLEAR starting past page 0 and ending at the slot's end cleared bits. */
    'CLEAR_SLOT_END_CHUNK',
    // Memslots and address spaces.
    /** A page of a memslot other than the VM's first was recorded dirty. */
    'MEMSLOT_SECOND',
    /** A page of an address-space-1 (SMM) memslot was recorded dirty. */
    'SMM_RECORD',
    /** A reset, GET or CLEAR re-protected pages of an address-space-1 memslot. */
    'SMM_REPROTECT',
    /** A guest store through a translation whose SPTE is no longer writable, while a TLB flush waits for this vCPU. */
    'TLB_STALE_STORE_FLUSH_WAITS',
    // Page write-tracking.
    /** A store to a write-tracked page was emulated (written, recorded, notified). */
    'TRACK_STORE',
    /** A vCPU left KVM_RUN because its page-track notification ring was soft-full. */
    'TRACK_RING_FULL_EXIT',
  ],
);
export type CoverageBlock = SharedBlock<never, keyof typeof CoverageLayout.floats>;
export type EdgeName = keyof typeof CoverageLayout.floats;
