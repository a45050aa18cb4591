/**
 * The shadow-page-table example (pagetrack/shadow-page-table.ts): a copy of each shadowed guest
 * page-table page, kept in sync by a notifier that runs in the writing vCPU's thread.
 */
import type { SharedBlock} from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';
import { PAGE_SIZE } from '../abi/constants.js';

const F64_BYTES = Float64Array.BYTES_PER_ELEMENT;

export const ShadowPageTableLayout = defineBlock(
  'shadow-page-table',
  [
    /** The shadow's own lock (KVM's shadow MMU holds mmu_lock in kvm_mmu_track_write). */
    'LOCK',
    /** Candidate guest page-table pages. */
    'PAGE_COUNT',
  ],
  [
    /** Notifications that re-synced a shadowed span. */
    'SYNCS',
    /** ... of which the guest bytes read back differed from the notified bytes (a newer write won). */
    'REFETCH_DIFFERED',
    /** Notifications for pages this shadow does not hold. */
    'IGNORED_WRITES',
    'PAGES_SHADOWED',
    'PAGES_UNSHADOWED',
    /** Pages dropped because their memslot went away (track_remove_region). */
    'PAGES_DROPPED',
    'REMOVE_REGIONS',
  ],
);
export type ShadowPageTableBlock = SharedBlock<keyof typeof ShadowPageTableLayout.words, keyof typeof ShadowPageTableLayout.floats>;
/** Per candidate page: 1 while the page is shadowed (write-tracked and copied). */
export const ShadowPageState = { NOT_SHADOWED: 0, SHADOWED: 1 } as const;

/** Byte offsets inside a shadow page table's buffer. */
export function shadowPageTableLayout(pageCount: number): { gfnsOffset: number; statesOffset: number; pagesOffset: number; bytes: number } {
  const gfnsOffset = ShadowPageTableLayout.bytes; // Float64 gfns: 8-aligned (block sizes are)
  const statesOffset = gfnsOffset + pageCount * F64_BYTES;
  // The page copies start 8-aligned, like everything in shared memory.
  const pagesOffset = Math.ceil((statesOffset + pageCount * Int32Array.BYTES_PER_ELEMENT) / F64_BYTES) * F64_BYTES;
  return { gfnsOffset, statesOffset, pagesOffset, bytes: pagesOffset + pageCount * PAGE_SIZE };
}
