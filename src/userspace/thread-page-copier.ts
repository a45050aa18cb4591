/**
 * The copier's copy, made on another thread (a harvester thread): when a harvester reports a
 * page, the page is copied there and then, into the harness's destinations — as the harness
 * copies a page reported on its own thread. Copying later (when the collection ends) would
 * hide the copy-before-reset bug: by then the reset has re-protected the page, and a write
 * after the report is in the copy although no ring entry ever recorded it.
 *
 * Same rules as DirtyPageCopier.copy: a record naming no page is a bad record, a page is copied
 * at most once per round (the first thread to report it wins: an atomic exchange of its round
 * number), and the harness counts the outcome afterwards (DirtyPageCopier.account).
 */
import { PAGE_WORDS } from '../abi/constants.js';
import type { Memslot } from '../kernel/memslots.js';
import { type SharedCopierBuffers, ThreadCopy } from './dirty-copier.js';
import { copyPageWords } from './page-copy.js';

export class ThreadPageCopier {
  private readonly slotIndex = new Map<number, number>();
  private readonly starts: number[] = [];
  private readonly destinations: Uint32Array[];
  private readonly round: Uint32Array;
  private readonly currentRound: Uint32Array;

  /** `slots`: the run's logged memslots in the harness copier's order. */
  constructor(
    private readonly slots: readonly Memslot[],
    shared: SharedCopierBuffers,
  ) {
    if (shared.destinations.length !== slots.length) throw new Error(`thread copier: ${slots.length} memslots for ${shared.destinations.length} destinations`);
    let start = 0;
    slots.forEach((s, i) => {
      this.slotIndex.set(s.encodedSlot, i);
      this.starts.push(start);
      start += s.pageCount;
    });
    this.destinations = shared.destinations.map((b) => new Uint32Array(b));
    this.round = new Uint32Array(shared.round);
    this.currentRound = new Uint32Array(shared.currentRound);
  }

  /** Copy one reported page now; returns a ThreadCopy outcome for the harness to count. */
  copy(slotEnc: number, offLo: number, offHi: number): number {
    const i = this.slotIndex.get(slotEnc);
    if (i === undefined) return ThreadCopy.BAD_RECORD;
    const slot = this.slots[i]!;
    if (offHi !== 0 || offLo >= slot.pageCount) return ThreadCopy.BAD_RECORD;
    const round = Atomics.load(this.currentRound, 0);
    if (Atomics.exchange(this.round, this.starts[i]! + offLo, round) === round) return ThreadCopy.DUPLICATE;
    const base = offLo * PAGE_WORDS;
    copyPageWords(slot.mem32, base, this.destinations[i]!, base);
    return ThreadCopy.COPIED;
  }
}
