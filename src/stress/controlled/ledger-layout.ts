/**
 * The page ledger of a controlled run: what the per-step invariant (invariant.ts) needs that
 * lives in a participant's private memory. Userspace writes, for every page of the data
 * memslot it hands on (copies), the page header it copied and a count of such hand-overs; each
 * vCPU keeps a copy of which pages its software TLB caches (SoftTlb.attachMirror).
 *
 * Words: per page [ITERATION, WRITER, SEQ, EMITS] (PAGE_WORDS each); then per vCPU one byte per
 * page (the TLB mirror).
 */
export const LedgerPageWords = { ITERATION: 0, WRITER: 1, SEQ: 2, EMITS: 3 } as const;
export const LEDGER_PAGE_WORDS = 4;
const WORD_BYTES = Int32Array.BYTES_PER_ELEMENT;

export interface PageLedgerViews {
  readonly pages: Int32Array;
  /** One view per vCPU: byte p is 1 while its TLB caches page p. */
  readonly tlb: Uint8Array[];
}

export function pageLedgerBytes(pages: number, vcpus: number): number {
  const tlbBytes = Math.ceil((pages * vcpus) / WORD_BYTES) * WORD_BYTES;
  return pages * LEDGER_PAGE_WORDS * WORD_BYTES + tlbBytes;
}

export function pageLedgerViews(buffer: SharedArrayBuffer, pages: number, vcpus: number): PageLedgerViews {
  const pageWords = pages * LEDGER_PAGE_WORDS;
  const tlbOff = pageWords * WORD_BYTES;
  const tlb: Uint8Array[] = [];
  for (let v = 0; v < vcpus; v++) tlb.push(new Uint8Array(buffer, tlbOff + v * pages, pages));
  return { pages: new Int32Array(buffer, 0, pageWords), tlb };
}
