/**
 * The no-lost-page oracle: dirty_log_test's scheme (docs/PROTOCOL.md, "7. The write path and
 * its windows", its final sync), generalised to several vCPUs and memslots.
 *
 * In iteration k every guest store writes k into the first 8 bytes of its page, with the
 * writer's vCPU id and its store sequence number next to it. Userspace collects during the
 * iteration and once more after parking every vCPU; then, for every page:
 *  - its header changed since the last verification but no record reported it → LOST PAGE;
 *  - reported and changed: the value must be k, except for the value of an instruction that
 *    was pending at the previous stop (dirty_log_test's "prev_last" page: the retried store
 *    carries the value loaded before the stop);
 *  - reported but unchanged → a false positive (harmless: the ring-full page whose store has
 *    not happened, duplicates, re-dirtying).
 * Comparing the whole header with a shadow copy, rather than only `val < k` for clean pages,
 * also catches a lost write whose value happens to be old.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { GuestPageWords } from '../guest/guest-memory.js';

export interface OracleSlot {
  readonly encodedSlot: number;
  readonly id: number;
  readonly baseGfn: number;
  readonly pageCount: number;
  readonly mem32: Uint32Array;
}

export interface LostPage {
  /** Memslot id and page offset in it. */
  readonly slot: number;
  readonly offset: number;
  readonly gfn: number;
  /** The vCPU that wrote the page last (from the page header). */
  readonly vcpu: number;
  readonly iteration: number;
  /** The value found in the page (the iteration of the lost write). */
  readonly value: number;
  readonly seed: number;
  readonly reason: 'unreported-write' | 'wrong-value';
}

export interface PendingStore {
  readonly vcpu: number;
  readonly gfn: number;
  readonly value: number;
}

export interface IterationVerdict {
  readonly iteration: number;
  readonly lostPages: number;
  readonly wrongValues: number;
  readonly falsePositives: number;
  readonly pagesReported: number;
  readonly pagesChanged: number;
  readonly duplicates: number;
  readonly badEntries: number;
  readonly details: LostPage[];
  /** Global page indices (slot order, then page) of the lost pages. */
  readonly lostIndices: number[];
}

/** Details kept per run; counts are always complete. */
const MAX_DETAILS = 20;

export class DirtyLogOracle {
  private readonly slotIndexByEncoded = new Map<number, number>();
  private readonly starts: number[] = [];
  private readonly total: number;
  private readonly reported: Uint8Array;
  private readonly shadowValue: Uint32Array;
  private readonly shadowWriter: Uint32Array;
  private readonly shadowSeq: Uint32Array;
  private readonly excluded = new Set<number>();
  private pendingPrev = new Map<number, number[]>();
  private pendingNow = new Map<number, number[]>();
  private iteration = 0;
  private duplicates = 0;
  private badEntries = 0;
  private entries = 0;
  readonly badEntryDetails: string[] = [];

  constructor(
    private readonly slots: readonly OracleSlot[],
    private readonly seed: number,
  ) {
    let start = 0;
    slots.forEach((s, i) => {
      this.slotIndexByEncoded.set(s.encodedSlot, i);
      this.starts.push(start);
      start += s.pageCount;
    });
    this.total = start;
    this.reported = new Uint8Array(start);
    this.shadowValue = new Uint32Array(start);
    this.shadowWriter = new Uint32Array(start);
    this.shadowSeq = new Uint32Array(start);
    this.syncShadowAll();
  }

  get pageCount(): number {
    return this.total;
  }

  /** 1 per page reported so far this iteration, in slot order (a live view reads it; never write it). */
  get reportedPages(): Readonly<Uint8Array> {
    return this.reported;
  }

  /** Start iteration k (after the vCPUs have been parked and verified for k-1). */
  beginIteration(k: number): void {
    this.iteration = k;
    this.excluded.clear();
  }

  /** A collected record (a ring entry or a bitmap bit), as (encoded slot, u64 offset). */
  report(slot: number, offLo: number, offHi: number): void {
    this.entries++;
    const i = this.slotIndexByEncoded.get(slot);
    const s = i === undefined ? undefined : this.slots[i];
    if (s === undefined || offHi !== 0 || offLo >= s.pageCount) {
      this.badEntries++;
      if (this.badEntryDetails.length < MAX_DETAILS) {
        this.badEntryDetails.push(`iteration ${this.iteration}: slot 0x${slot.toString(16)} offset ${offHi * 2 ** 32 + offLo}`);
      }
      return;
    }
    const g = this.starts[i!]! + offLo;
    if (this.reported[g] === 1) this.duplicates++;
    else this.reported[g] = 1;
  }

  /** Report a whole slot page by page from a bitmap snapshot (bit n = page n). */
  reportBitmap(slot: number, bitmap: Int32Array | Uint32Array): void {
    for (let word = 0; word < bitmap.length; word++) {
      let bits = bitmap[word]! >>> 0;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits = (bits & ~(1 << bit)) >>> 0;
        this.report(slot, word * 32 + bit, 0);
      }
    }
  }

  /** Logging was off for a while on this slot in this iteration: do not judge its pages. */
  excludeSlot(encodedSlot: number): void {
    this.excluded.add(encodedSlot);
  }

  /** The instructions interrupted by the stop: their stores happen next iteration. */
  setPending(stores: readonly PendingStore[]): void {
    this.pendingNow = new Map();
    for (const p of stores) {
      const g = this.globalIndexOfGfn(p.gfn);
      if (g < 0) continue;
      const list = this.pendingNow.get(g) ?? [];
      list.push(p.value);
      this.pendingNow.set(g, list);
    }
  }

  private globalIndexOfGfn(gfn: number): number {
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (gfn >= s.baseGfn && gfn - s.baseGfn < s.pageCount) return this.starts[i]! + (gfn - s.baseGfn);
    }
    return -1;
  }

  /** Verify iteration k with every vCPU parked; then the shadow is brought up to date. */
  verify(): IterationVerdict {
    const k = this.iteration;
    let lost = 0;
    let wrong = 0;
    let fp = 0;
    let reportedPages = 0;
    let changedPages = 0;
    const details: LostPage[] = [];
    const lostIndices: number[] = [];
    for (let si = 0; si < this.slots.length; si++) {
      const s = this.slots[si]!;
      const start = this.starts[si]!;
      const mem = s.mem32;
      const excluded = this.excluded.has(s.encodedSlot);
      for (let p = 0; p < s.pageCount; p++) {
        const g = start + p;
        const base = p * PAGE_WORDS;
        const value = mem[base + GuestPageWords.ITERATION_LO]!;
        const valueHi = mem[base + GuestPageWords.ITERATION_HI]!;
        const writer = mem[base + GuestPageWords.WRITER_VCPU]!;
        const seq = mem[base + GuestPageWords.WRITER_SEQ]!;
        const changed =
          value !== this.shadowValue[g] || writer !== this.shadowWriter[g] || seq !== this.shadowSeq[g];
        const rep = this.reported[g] === 1;
        if (rep) reportedPages++;
        if (changed) changedPages++;
        if (!excluded) {
          if (changed && !rep) {
            lost++;
            lostIndices.push(g);
            if (details.length < MAX_DETAILS) {
              details.push(this.detail(s, p, writer, value, 'unreported-write'));
            }
          } else if (changed && (valueHi !== 0 || (value !== k && !this.pendingPrev.get(g)?.includes(value)))) {
            wrong++;
            if (details.length < MAX_DETAILS) details.push(this.detail(s, p, writer, value, 'wrong-value'));
          } else if (!changed && rep) {
            fp++;
          }
        }
        if (changed) {
          this.shadowValue[g] = value;
          this.shadowWriter[g] = writer;
          this.shadowSeq[g] = seq;
        }
      }
    }
    this.reported.fill(0);
    this.pendingPrev = this.pendingNow;
    this.pendingNow = new Map();
    const verdict: IterationVerdict = {
      iteration: k,
      lostPages: lost,
      wrongValues: wrong,
      falsePositives: fp,
      pagesReported: reportedPages,
      pagesChanged: changedPages,
      duplicates: this.duplicates,
      badEntries: this.badEntries,
      details,
      lostIndices,
    };
    this.duplicates = 0;
    this.badEntries = 0;
    this.entries = 0;
    return verdict;
  }

  private detail(s: OracleSlot, p: number, writer: number, value: number, reason: LostPage['reason']): LostPage {
    return {
      slot: s.id,
      offset: p,
      gfn: s.baseGfn + p,
      vcpu: writer,
      iteration: this.iteration,
      value,
      seed: this.seed,
      reason,
    };
  }

  /** Take the current memory as the reference (at start, or after an unjudged stretch). */
  syncShadowAll(): void {
    for (let si = 0; si < this.slots.length; si++) {
      const s = this.slots[si]!;
      const start = this.starts[si]!;
      for (let p = 0; p < s.pageCount; p++) {
        const base = p * PAGE_WORDS;
        this.shadowValue[start + p] = s.mem32[base + GuestPageWords.ITERATION_LO]!;
        this.shadowWriter[start + p] = s.mem32[base + GuestPageWords.WRITER_VCPU]!;
        this.shadowSeq[start + p] = s.mem32[base + GuestPageWords.WRITER_SEQ]!;
      }
    }
  }
}
