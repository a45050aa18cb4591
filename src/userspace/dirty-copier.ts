/**
 * Userspace's use of the dirty set: copy each collected page to a destination memory (as a
 * migration or snapshot would), at most once per collection round, and count resends — a page
 * copied again although nobody wrote it since its last copy: a false positive of the logging
 * interface (the benign race of legacy GET, duplicates, re-dirtying, initially-set's first
 * round). With every writer parked, the destination must then equal the source byte for byte.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { GuestPageWords } from '../guest/guest-memory.js';
import type { Memslot } from '../kernel/memslots.js';
import { Step, stepHook } from '../kernel/step-hook.js';
import { PageHeaderHistory, copyPageWords, pageWordsEqual } from './page-copy.js';

export interface CopyMismatch {
  readonly slot: number;
  readonly offset: number;
  readonly gfn: number;
  /** Writer id in the source page header (vCPU, or device ≥ DEVICE_WRITER_BASE). */
  readonly writer: number;
}

/** What a comparison of the destination with the source found. */
export interface CopyComparison {
  readonly mismatches: number;
  /** The first mismatched pages (at most the `max` asked for). */
  readonly details: CopyMismatch[];
  /** Global page indices (slot order, then page) of every mismatched page. */
  readonly indices: number[];
}

/** Mismatches described per comparison; the count is always complete. */
const MAX_MISMATCH_DETAILS = 20;

/**
 * What another thread needs to copy pages into this copier's destinations itself, at the moment
 * its harvester reports them (thread-page-copier.ts): the destinations, the per-page round
 * numbers (a page is copied at most once per round, whichever thread reports it first) and the
 * current round.
 */
export interface SharedCopierBuffers {
  readonly destinations: readonly SharedArrayBuffer[];
  readonly round: SharedArrayBuffer;
  readonly currentRound: SharedArrayBuffer;
}

/** What a thread that copied a reported page itself did with it (ThreadPageCopier.copy). */
export const ThreadCopy = { COPIED: 0, DUPLICATE: 1, BAD_RECORD: 2 } as const;

export class DirtyPageCopier {
  private readonly slotIndex = new Map<number, number>();
  private readonly starts: number[] = [];
  readonly destinations: Uint32Array[];
  private readonly history: PageHeaderHistory;
  private readonly round: Uint32Array;
  /** Word 0: the current round (shared, so that a harvester thread's copies use it too). */
  private readonly currentRound: Uint32Array;
  pagesCopied = 0;
  pagesResent = 0;
  duplicates = 0;
  badRecords = 0;

  /** `shared`: destinations and rounds made elsewhere (allocateShared), for threads of another worker. */
  constructor(
    private readonly slots: readonly Memslot[],
    shared: SharedCopierBuffers = DirtyPageCopier.allocateShared(slots),
  ) {
    let start = 0;
    slots.forEach((s, i) => {
      this.slotIndex.set(s.encodedSlot, i);
      this.starts.push(start);
      start += s.pageCount;
    });
    this.destinations = shared.destinations.map((b) => new Uint32Array(b));
    this.history = new PageHeaderHistory(start);
    this.round = new Uint32Array(shared.round);
    this.currentRound = new Uint32Array(shared.currentRound);
    Atomics.store(this.currentRound, 0, 1);
    for (let i = 0; i < slots.length; i++) this.resyncSlot(i);
  }

  /** Start a collection round: a page is copied at most once per round. */
  beginRound(): void {
    const next = (this.currentRound[0]! + 1) >>> 0 || 1;
    Atomics.store(this.currentRound, 0, next);
  }

  /** Destinations, rounds and the round word for `slots`, to share with other threads. */
  static allocateShared(slots: readonly Memslot[]): SharedCopierBuffers {
    const pages = slots.reduce((n, s) => n + s.pageCount, 0);
    return {
      destinations: slots.map((s) => new SharedArrayBuffer(s.pageCount * PAGE_WORDS * 4)),
      round: new SharedArrayBuffer(Math.max(1, pages) * 4),
      currentRound: new SharedArrayBuffer(4),
    };
  }

  /** The buffers a harvester thread copies into (see SharedCopierBuffers). */
  shared(): SharedCopierBuffers {
    return { destinations: this.destinations.map((d) => d.buffer as SharedArrayBuffer), round: this.round.buffer as SharedArrayBuffer, currentRound: this.currentRound.buffer as SharedArrayBuffer };
  }

  /**
   * Count a page another thread copied itself when its harvester reported it (`outcome`, a
   * ThreadCopy value), exactly as copy() would have counted it. Called once that thread's
   * collection has ended: the destination still holds that copy (one copy per page per round).
   */
  account(slotEnc: number, offLo: number, outcome: number): void {
    if (outcome === ThreadCopy.BAD_RECORD) {
      this.badRecords++;
      return;
    }
    if (outcome === ThreadCopy.DUPLICATE) {
      this.duplicates++;
      return;
    }
    const i = this.slotIndex.get(slotEnc)!;
    const base = offLo * PAGE_WORDS;
    if (this.history.record(this.starts[i]! + offLo, this.destinations[i]!, base)) this.pagesResent++;
    this.pagesCopied++;
  }

  /** Copy one collected page (the sink of a LogCollector). */
  readonly copy = (slotEnc: number, offLo: number, offHi: number): void => {
    const i = this.slotIndex.get(slotEnc);
    if (i === undefined) {
      this.badRecords++;
      return;
    }
    const slot = this.slots[i]!;
    if (offHi !== 0 || offLo >= slot.pageCount) {
      this.badRecords++;
      return;
    }
    const g = this.starts[i]! + offLo;
    const round = this.currentRound[0]!;
    if (this.round[g] === round) {
      this.duplicates++;
      return;
    }
    this.round[g] = round;
    if (stepHook.active) stepHook.at(Step.USER_READ_PAGE, slot.baseGfn + offLo, 0);
    const dst = this.destinations[i]!;
    const base = offLo * PAGE_WORDS;
    copyPageWords(slot.mem32, base, dst, base);
    if (this.history.record(g, dst, base)) this.pagesResent++;
    this.pagesCopied++;
  };

  /**
   * With every writer parked: pages whose destination differs from the source. Each one is
   * then repaired (copied) so that one lost write is reported once, not again every round.
   */
  compare(skipSlots: ReadonlySet<number> = new Set(), max = MAX_MISMATCH_DETAILS): CopyComparison {
    let mismatches = 0;
    const details: CopyMismatch[] = [];
    const indices: number[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (skipSlots.has(slot.encodedSlot)) {
        this.resyncSlot(i);
        continue;
      }
      const src = slot.mem32;
      const dst = this.destinations[i]!;
      for (let p = 0; p < slot.pageCount; p++) {
        const base = p * PAGE_WORDS;
        if (pageWordsEqual(dst, base, src, base)) continue;
        mismatches++;
        indices.push(this.starts[i]! + p);
        if (details.length < max) {
          details.push({ slot: slot.id, offset: p, gfn: slot.baseGfn + p, writer: src[base + GuestPageWords.WRITER_VCPU]! });
        }
        copyPageWords(src, base, dst, base);
      }
    }
    return { mismatches, details, indices };
  }

  /** Take a slot's source as copied (after a stretch the run does not judge). */
  resyncSlot(i: number): void {
    const slot = this.slots[i]!;
    this.destinations[i]!.set(slot.mem32);
    const start = this.starts[i]!;
    for (let p = 0; p < slot.pageCount; p++) this.history.record(start + p, slot.mem32, p * PAGE_WORDS);
  }
}
