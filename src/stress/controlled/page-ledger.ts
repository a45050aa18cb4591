/**
 * Userspace's side of the page ledger (ledger-layout.ts): every page it hands on is recorded
 * with the header it copied, so that the per-step invariant knows which pages were written
 * since their last collection.
 */
import { PAGE_WORDS } from '../../abi/constants.js';
import { GuestPageWords } from '../../guest/guest-memory.js';
import type { Memslot } from '../../kernel/memslots.js';
import { LEDGER_PAGE_WORDS, LedgerPageWords, pageLedgerViews } from './ledger-layout.js';

export class PageLedgerWriter {
  private readonly pages: Int32Array;

  constructor(
    buffer: SharedArrayBuffer,
    private readonly slot: Memslot,
    vcpus: number,
  ) {
    this.pages = pageLedgerViews(buffer, slot.pageCount, vcpus).pages;
  }

  /** A collected record was handed on (copied): note the header the copy saw. */
  emitted(encodedSlot: number, offLo: number, offHi: number): void {
    if (encodedSlot !== this.slot.encodedSlot || offHi !== 0 || offLo >= this.slot.pageCount) return;
    const m = this.slot.mem32;
    const base = offLo * PAGE_WORDS;
    const w = offLo * LEDGER_PAGE_WORDS;
    Atomics.store(this.pages, w + LedgerPageWords.ITERATION, m[base + GuestPageWords.ITERATION_LO]! | 0);
    Atomics.store(this.pages, w + LedgerPageWords.WRITER, m[base + GuestPageWords.WRITER_VCPU]! | 0);
    Atomics.store(this.pages, w + LedgerPageWords.SEQ, m[base + GuestPageWords.WRITER_SEQ]! | 0);
    Atomics.add(this.pages, w + LedgerPageWords.EMITS, 1);
  }
}
