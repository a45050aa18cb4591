/**
 * The dirty-logging invariant, checked after every move of a controlled run (docs/PROTOCOL.md,
 * section 7, made exact). Every page of the data memslot written since userspace last collected
 * it (its header differs from the one userspace copied) must be, at every step:
 *  (a) recorded: a ring entry still DIRTY (not yet harvested), a set bit in the live bitmap, or
 *      a record userspace has taken (harvested, or a bit GET or CLEAR took) and not yet handed
 *      on; or
 *  (b) write-protected: its SPTE not writable, and no vCPU's TLB still caching it; or
 *  (c) inside a window the protocol allows: a vCPU between the fault's compare-and-swap and the
 *      page's mark (parked at fault-mark-dirty), or between an emulated store and its mark
 *      (parked inside the push or the bitmap update for that page).
 * The first step where a page is none of these is reported: its next stores cannot fault and
 * nothing will ever report them. The checker reads shared memory as it is (the newest store of
 * every location, whatever a weak model let a participant read), plus the page ledger.
 *
 * It also keeps a journal of what happened to each page and to the ring entries naming it, per
 * step, for the explanation of a violation (explain.ts).
 */
import { DIRTY_GFN_WORDS, DirtyGfnWords } from '../../abi/dirty-gfn.js';
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, PAGE_WORDS } from '../../abi/constants.js';
import { GuestPageWords } from '../../guest/guest-memory.js';
import { SpteBits } from '../../kernel/memslot-layout.js';
import type { Memslot } from '../../kernel/memslots.js';
import { Step } from '../../kernel/step-hook.js';
import type { Vm } from '../../kernel/vm.js';
import { LEDGER_PAGE_WORDS, LedgerPageWords, type PageLedgerViews } from './ledger-layout.js';
import { ParticipantStatus } from './token-layout.js';
import type { SchedulerToken } from './token.js';

export type JournalKind = 'written' | 'recorded' | 'harvested' | 'freed' | 'writable' | 'protected' | 'cached' | 'collected' | 'bit-set' | 'bit-taken';

export interface JournalEntry {
  readonly step: number;
  /** Who moved at that step. */
  readonly participant: number;
  readonly page: number;
  readonly kind: JournalKind;
  /** Ring entries: the vCPU whose ring, and the entry's index; else -1. */
  readonly ring: number;
  readonly entry: number;
}

export interface InvariantViolation {
  /** The step after which the invariant no longer held, and who moved in it. */
  readonly step: number;
  readonly participant: number;
  /** The page (offset in the data memslot) and its gfn. */
  readonly page: number;
  readonly gfn: number;
  readonly reason: string;
}

/** Journal entries kept (the explanation needs the recent history of one page). */
const JOURNAL_LIMIT = 20_000;
const WRITABLE = SpteBits.WRITABLE;
const W_FLAGS = DirtyGfnWords.FLAGS;

export class InvariantChecker {
  readonly journal: JournalEntry[] = [];
  violation: InvariantViolation | null = null;
  private readonly pages: number;
  private readonly prevFlags: Int32Array[] = [];
  private readonly prevEntryPage: Int32Array[] = [];
  private readonly prevBits: Int32Array;
  private readonly prevHeader: Int32Array;
  private readonly prevWritable: Uint8Array;
  private readonly prevCached: Uint8Array;
  private readonly prevEmits: Int32Array;
  /**
   * Per page: records of it userspace has taken (harvested entries, bits GET or CLEAR took).
   * Each is handed on once (the ledger's EMITS), so while more were taken than handed on,
   * userspace still holds one.
   */
  private readonly taken: Int32Array;
  private readonly recorded: Uint8Array;
  private readonly window: Uint8Array;

  constructor(
    private readonly vm: Vm,
    private readonly slot: Memslot,
    private readonly vcpus: number,
    private readonly ledger: PageLedgerViews,
  ) {
    const n = slot.pageCount;
    this.pages = n;
    for (let v = 0; v < vcpus; v++) {
      const size = vm.ring(v)?.size ?? 0;
      this.prevFlags.push(new Int32Array(size));
      this.prevEntryPage.push(new Int32Array(size).fill(-1));
    }
    this.prevBits = new Int32Array(slot.bitmap?.length ?? 0);
    this.prevHeader = new Int32Array(3 * n);
    this.prevWritable = new Uint8Array(n);
    for (let p = 0; p < n; p++) this.prevWritable[p] = Atomics.load(slot.spte, p) & WRITABLE;
    this.prevCached = new Uint8Array(n);
    this.prevEmits = new Int32Array(n);
    this.taken = new Int32Array(n);
    this.recorded = new Uint8Array(n);
    this.window = new Uint8Array(n);
  }

  /** After step `step` (participant `mover` moved): record what changed, check every page. */
  check(step: number, mover: number, token: SchedulerToken): void {
    if (this.violation !== null) return;
    this.recorded.fill(0);
    this.window.fill(0);
    this.scanRings(step, mover);
    this.scanBitmap(step, mover);
    this.scanWindows(token);
    this.scanPages(step, mover);
  }

  private note(step: number, participant: number, page: number, kind: JournalKind, ring = -1, entry = -1): void {
    if (this.journal.length < JOURNAL_LIMIT) this.journal.push({ step, participant, page, kind, ring, entry });
  }

  private entryPage(u32: Uint32Array, e: number): number {
    if (u32[e + DirtyGfnWords.SLOT] !== this.slot.encodedSlot || u32[e + DirtyGfnWords.OFFSET_HI] !== 0) return -1;
    const lo = u32[e + DirtyGfnWords.OFFSET_LO]!;
    return lo < this.pages ? lo : -1;
  }

  private scanRings(step: number, mover: number): void {
    for (let v = 0; v < this.vcpus; v++) {
      const ring = this.vm.ring(v);
      if (ring === null) continue;
      const prevF = this.prevFlags[v]!;
      const prevP = this.prevEntryPage[v]!;
      for (let i = 0; i < ring.size; i++) {
        const e = i * DIRTY_GFN_WORDS;
        const flags = Atomics.load(ring.i32, e + W_FLAGS);
        const page = this.entryPage(ring.u32, e);
        const was = prevF[i]!;
        if (flags !== was || page !== prevP[i]) this.entryChanged(step, mover, v, i, was, flags, prevP[i]!, page);
        if (flags === KVM_DIRTY_GFN_F_DIRTY && page >= 0) this.recorded[page] = 1;
        prevF[i] = flags;
        prevP[i] = page;
      }
    }
  }

  private entryChanged(step: number, mover: number, v: number, i: number, was: number, now: number, wasPage: number, page: number): void {
    if (now === KVM_DIRTY_GFN_F_DIRTY && page >= 0 && (was !== now || wasPage !== page)) this.note(step, mover, page, 'recorded', v, i);
    if (was === KVM_DIRTY_GFN_F_DIRTY && now !== KVM_DIRTY_GFN_F_DIRTY && wasPage >= 0) {
      // Userspace took the record: it holds it until it hands the page on.
      this.taken[wasPage]!++;
      this.note(step, mover, wasPage, 'harvested', v, i);
    }
    if ((was & KVM_DIRTY_GFN_F_RESET) !== 0 && now === 0 && wasPage >= 0) this.note(step, mover, wasPage, 'freed', v, i);
  }

  private scanBitmap(step: number, mover: number): void {
    const bm = this.slot.bitmap;
    if (bm === null || !this.slot.hasBitmap) return;
    for (let w = 0; w < this.prevBits.length && w < bm.length; w++) {
      const bits = Atomics.load(bm, w);
      const was = this.prevBits[w]!;
      for (let b = 0; b < 32; b++) {
        const page = w * 32 + b;
        if (page >= this.pages) break;
        const now = (bits >>> b) & 1;
        const before = (was >>> b) & 1;
        if (now === 1) this.recorded[page] = 1;
        if (now === 1 && before === 0) this.note(step, mover, page, 'bit-set');
        if (now === 0 && before === 1) {
          this.taken[page]!++;
          this.note(step, mover, page, 'bit-taken');
        }
      }
      this.prevBits[w] = bits;
    }
  }

  /** Pages inside an allowed window: a vCPU parked between a write (or the fault's swap) and the page's mark. */
  private scanWindows(token: SchedulerToken): void {
    const base = this.slot.baseGfn;
    for (let v = 0; v < this.vcpus; v++) {
      const p = v + 1;
      if (token.status(p) !== ParticipantStatus.PARKED) continue;
      const step = token.step(p);
      let page = -1;
      if (step === Step.FAULT_MARK_DIRTY || step === Step.BITMAP_UPDATE) page = token.argA(p) - base;
      else if (step === Step.PUSH_PUBLISH) page = token.argB(p);
      if (page >= 0 && page < this.pages) this.window[page] = 1;
    }
  }

  private scanPages(step: number, mover: number): void {
    const led = this.ledger.pages;
    const m = this.slot.mem32;
    for (let p = 0; p < this.pages; p++) {
      const h = p * PAGE_WORDS;
      const it = m[h + GuestPageWords.ITERATION_LO]! | 0;
      const writer = m[h + GuestPageWords.WRITER_VCPU]! | 0;
      const seq = m[h + GuestPageWords.WRITER_SEQ]! | 0;
      const k = 3 * p;
      if (it !== this.prevHeader[k] || writer !== this.prevHeader[k + 1] || seq !== this.prevHeader[k + 2]) this.note(step, mover, p, 'written');
      this.prevHeader[k] = it;
      this.prevHeader[k + 1] = writer;
      this.prevHeader[k + 2] = seq;
      const l = p * LEDGER_PAGE_WORDS;
      const emits = Atomics.load(led, l + LedgerPageWords.EMITS);
      if (emits !== this.prevEmits[p]) {
        this.note(step, mover, p, 'collected');
        this.prevEmits[p] = emits;
      }
      const held = this.taken[p]! > emits;
      const writable = Atomics.load(this.slot.spte, p) & WRITABLE;
      if (writable !== this.prevWritable[p]) this.note(step, mover, p, writable !== 0 ? 'writable' : 'protected');
      this.prevWritable[p] = writable;
      let cached = 0;
      for (let v = 0; v < this.vcpus; v++) cached |= this.ledger.tlb[v]![p]!;
      if (cached !== 0 && this.prevCached[p] === 0) this.note(step, mover, p, 'cached');
      this.prevCached[p] = cached;
      const dirty = it !== Atomics.load(led, l + LedgerPageWords.ITERATION) || writer !== Atomics.load(led, l + LedgerPageWords.WRITER) || seq !== Atomics.load(led, l + LedgerPageWords.SEQ);
      if (!dirty || this.recorded[p] === 1 || held || this.window[p] === 1) continue;
      if (writable === 0 && cached === 0) continue;
      this.violation = {
        step,
        participant: mover,
        page: p,
        gfn: this.slot.baseGfn + p,
        reason:
          `page ${p} was written since its last collection, yet it has no record (no DIRTY entry, no dirty bit, none held by userspace) ` +
          `and ${writable !== 0 ? 'its SPTE is writable' : 'a vCPU still caches it writable in its TLB'}: its next stores are logged nowhere`,
      };
      return;
    }
  }
}
