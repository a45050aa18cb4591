/**
 * The migration's verification, with every writer parked: the destination must equal the
 * source byte for byte. A mismatch names the page, its last writer, and the rounds whose values
 * the two sides hold (the guest writes the round number into each page it writes), which says
 * from which round the missing write came.
 */
import { PAGE_WORDS } from '../../abi/constants.js';
import { GuestPageWords } from '../../guest/guest-memory.js';
import type { Memslot } from '../../kernel/memslots.js';
import { pageWordsEqual } from '../page-copy.js';
import type { PageMismatch } from './migration-report.js';
import type { DestinationCheck } from './migration-summary.js';

/** Mismatches described; the count is always complete. */
const MAX_MISMATCH_DETAILS = 20;

export function compareDestination(slots: readonly Memslot[], sources: readonly Int32Array[], destinations: readonly Int32Array[]): DestinationCheck {
  let mismatchedPages = 0;
  const mismatches: PageMismatch[] = [];
  for (let si = 0; si < slots.length; si++) {
    const slot = slots[si]!;
    const src = sources[si]!;
    const dst = destinations[si]!;
    for (let p = 0; p < slot.pageCount; p++) {
      const base = p * PAGE_WORDS;
      if (pageWordsEqual(src, base, dst, base)) continue;
      mismatchedPages++;
      if (mismatches.length < MAX_MISMATCH_DETAILS) {
        mismatches.push({
          slot: slot.id,
          offset: p,
          gfn: slot.baseGfn + p,
          writer: src[base + GuestPageWords.WRITER_VCPU]! >>> 0,
          sourceRound: src[base + GuestPageWords.ITERATION_LO]! >>> 0,
          destinationRound: dst[base + GuestPageWords.ITERATION_LO]! >>> 0,
        });
      }
    }
  }
  return { mismatchedPages, mismatches };
}
