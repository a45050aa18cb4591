/**
 * The shared reaper's block (userspace/self-reaper.ts): any thread may harvest + reset under its
 * lock; each ring's userspace fetch index lives here so that every reaper continues where the
 * previous one stopped. Counters are written under the lock only.
 */
import { defineBlock } from '../abi/layout.js';

export const ReaperLayout = defineBlock(
  'reaper',
  ['LOCK'],
  ['HARVESTED', 'RESETS', 'ENTRIES_RESET', 'MISMATCHES', 'BAD_ENTRIES', 'REAPS'],
);
/** After a ReaperLayout block come one Int32 fetch index per vCPU: vCPU i at word REAPER_FETCH_WORD + i. */
export const REAPER_FETCH_WORD = ReaperLayout.bytes / 4;
