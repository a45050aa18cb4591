/**
 * A memslot's dirty bitmap (virt/kvm/kvm_main.c), all of its sides:
 *  - set: `set_bit_le` from the fault path of a vCPU, or from a write with no running vCPU;
 *  - legacy KVM_GET_DIRTY_LOG: exchange every non-zero word with 0 into the snapshot half and
 *    write-protect exactly those pages, under mmu_lock;
 *  - manual-protect GET: copy the live bitmap (no clear, no protect);
 *  - KVM_CLEAR_DIRTY_LOG: `cleared = mask & fetch_andnot(word, mask)` and protect only `cleared`.
 *
 * Bit n is page n, little-endian bit order; the kernel works on 64-bit words. Here words are
 * 32-bit halves (Int32 for Atomics): every bit is still exchanged or cleared atomically, which
 * is the property the protocol relies on (a bit set concurrently lands either in this
 * snapshot or in the live word for the next one).
 */
import { type BitmapScan, SCAN_BLOCK_BYTES } from './bitmap-simd-scan.js';
import { BitmapOp, coverage, noteBitmapWord, noteClearWord } from './coverage.js';
import { SpteBits } from './memslot-layout.js';
import { type Memslot, bitmapBytes } from './memslots.js';
import {
  modelledBitmapClear,
  modelledBitmapLoad,
  modelledBitmapStore,
  modelledBitmapTake,
  modelledSetBit,
  modelledWriteProtect,
} from './mmu-wmm.js';
import { Step, stepHook } from './step-hook.js';
import { mem } from './wmm/mem.js';

const WRITABLE = SpteBits.WRITABLE;
/** Pages per 32-bit word of the emulator's bitmaps: page n is bit (n & 31) of word n >>> 5. */
const WORD_SHIFT = 5;
const WORD_BITS = 1 << WORD_SHIFT;
const BIT_MASK = WORD_BITS - 1;
/** The kernel works on 64-page words: two of ours, low half first (little-endian). */
const HALVES_PER_KERNEL_WORD = 2;
const PAGES_PER_KERNEL_WORD = 64;
/** CLEAR works on the kernel's 64-page words: first_page, and num_pages short of the slot's end, align to them. */
export const CLEAR_ALIGN_PAGES = PAGES_PER_KERNEL_WORD;
/** Words the legacy GET's and the CLEAR's scans test at once (a power of two). */
const SCAN_WORDS = 8;
const WORD_BYTES = Uint32Array.BYTES_PER_ELEMENT;
/** The bitmap's 32-bit words in one block of the SIMD scan. */
const BLOCK_WORDS = SCAN_BLOCK_BYTES / WORD_BYTES;

/** u32 words of a bitmap for `pageCount` pages (rounded up to 64 pages, so always even). */
export function bitmapWords(pageCount: number): number {
  return bitmapBytes(pageCount) / Uint32Array.BYTES_PER_ELEMENT;
}

/** set_bit_le. */
export function setDirtyBit(bitmap: Int32Array, page: number): void {
  if (mem.active) modelledSetBit(bitmap, page >>> WORD_SHIFT, 1 << (page & BIT_MASK));
  else Atomics.or(bitmap, page >>> WORD_SHIFT, 1 << (page & BIT_MASK));
}

/**
 * A slot's fresh bitmap when logging starts: zeroed, or every page bit set (padding bits stay 0)
 * under INITIALLY_SET. The snapshot half is zeroed either way.
 */
export function initBitmap(slot: Memslot, allSet: boolean): void {
  const bm = slot.bitmap!;
  slot.bitmapSnapshot!.fill(0);
  const full = allSet ? slot.pageCount >>> WORD_SHIFT : 0;
  const store = mem.active ? modelledBitmapStore : Atomics.store;
  for (let i = 0; i < bm.length; i++) store(bm, i, i < full ? -1 : 0);
  const rest = slot.pageCount & BIT_MASK;
  if (allSet && rest !== 0) store(bm, full, ((1 << rest) - 1) | 0);
}

/** Write-protect the pages of one 32-bit word's set bits; returns how many were writable. */
function protectWord(spte: Int32Array, firstPage: number, bits: number, pageCount: number): number {
  if (!mem.active) return protectBits(spte, firstPage, bits, pageCount);
  let n = 0;
  let b = bits >>> 0;
  while (b !== 0) {
    const bit = BIT_MASK - Math.clz32(b);
    b = (b & ~(1 << bit)) >>> 0;
    const page = firstPage + bit;
    if (page < pageCount && modelledWriteProtect(spte, page)) n++;
  }
  return n;
}

/** protectWord without a weak memory model: an atomic AND per page (a fast fault sets WRITABLE with a CAS). */
function protectBits(spte: Int32Array, firstPage: number, bits: number, pageCount: number): number {
  let n = 0;
  let b = bits >>> 0;
  while (b !== 0) {
    const bit = BIT_MASK - Math.clz32(b);
    b = (b & ~(1 << bit)) >>> 0;
    const page = firstPage + bit;
    if (page < pageCount && (Atomics.and(spte, page, ~WRITABLE) & WRITABLE) !== 0) n++;
  }
  return n;
}

/**
 * Legacy GET's core, caller holding mmu_lock: for each non-zero word, exchange it with 0 into
 * `snapshot` (the caller's buffer, or the slot's second half when that buffer is bad) and
 * (unless `protect` is false, the legacy-get-no-protect mutant) re-protect its pages. Every
 * other word of `snapshot` is zeroed. Returns the pages re-protected, or -1 when no bit was
 * taken (then the caller need not flush TLBs).
 */
export function exchangeAndProtect(slot: Memslot, snapshot: Uint32Array, protect: boolean): number {
  const live = slot.bitmap!;
  const words = live.length;
  // Most words of a large slot are zero: one memset, then only the non-zero words are written.
  snapshot.fill(0, 0, words);
  if (mem.active || stepHook.active) return exchangeWords(slot, snapshot, protect, 0, words, -1);
  // A plain read finds the non-zero words, as the kernel's scan does; a bit set just after it
  // is read stays in the live word for the next GET. Only the exchange must be atomic.
  if (slot.bitmapScan !== null) return exchangeScanned(slot, snapshot, protect, slot.bitmapScan);
  // Without the SIMD scan, the kernel's 64-page words are read eight at a time (one branch per
  // 512 pages): as BigInts, which the optimised scan keeps in registers, it takes half the
  // loads of the Int32 words and about half the time.
  const live64 = slot.bitmapU64!;
  const whole64 = live64.length & ~(SCAN_WORDS - 1);
  let reprotected = -1;
  for (let j = 0; j < whole64; j += SCAN_WORDS) {
    if ((live64[j]! | live64[j + 1]! | live64[j + 2]! | live64[j + 3]! | live64[j + 4]! | live64[j + 5]! | live64[j + 6]! | live64[j + 7]!) === 0n) continue;
    reprotected = exchangeWords(slot, snapshot, protect, j * HALVES_PER_KERNEL_WORD, (j + SCAN_WORDS) * HALVES_PER_KERNEL_WORD, reprotected);
  }
  return exchangeWords(slot, snapshot, protect, whole64 * HALVES_PER_KERNEL_WORD, words, reprotected);
}

/**
 * exchangeAndProtect's scan in SIMD, after `snapshot` was zeroed: the 64-byte blocks it finds,
 * then the tail; also BitmapLogPlan's GET. Only ever without a weak memory model or a step hook, so its loop has neither test, nor any call but
 * the scan's and the Atomics': after another process ran on this core every function and
 * object on the way is a cold cache line, and this loop is the GET's whole inner path.
 */
export function exchangeScanned(slot: Memslot, snapshot: Uint32Array, protect: boolean, scan: BitmapScan): number {
  const live = slot.bitmap!;
  const spte = slot.spte;
  const pageCount = slot.pageCount;
  const words = live.length;
  const endByte = (words * WORD_BYTES) & ~(SCAN_BLOCK_BYTES - 1);
  let reprotected = -1;
  for (let at = scan(0, endByte); at < endByte; at = scan(at + SCAN_BLOCK_BYTES, endByte)) {
    const first = at / WORD_BYTES;
    for (let i = first; i < first + BLOCK_WORDS; i++) {
      if (live[i] === 0) continue;
      const bits = Atomics.exchange(live, i, 0);
      if (bits === 0) continue;
      snapshot[i] = bits;
      if (reprotected < 0) reprotected = 0;
      if (protect) reprotected += protectBits(spte, i * WORD_BITS, bits, pageCount);
    }
  }
  const tail = endByte / WORD_BYTES;
  return tail === words ? reprotected : exchangeWords(slot, snapshot, protect, tail, words, reprotected);
}

/**
 * Legacy GET over words [from, to): exchange each non-zero word with 0 into `snapshot` and
 * re-protect its pages. `reprotected` is the count so far, -1 while no bit was taken; returns
 * it updated. Also the whole scan under a weak memory model or a step hook.
 */
function exchangeWords(slot: Memslot, snapshot: Uint32Array, protect: boolean, from: number, to: number, reprotected: number): number {
  const live = slot.bitmap!;
  for (let i = from; i < to; i++) {
    if ((mem.active ? modelledBitmapLoad(live, i) : live[i]) === 0) continue;
    if (stepHook.active) {
      stepHook.at(Step.BITMAP_UPDATE, i, 0);
      // Bits are only ever taken under mmu_lock, which this holds: the word is still non-zero.
      if (coverage.active) noteBitmapWord(BitmapOp.GET, i, slot);
    }
    const bits = mem.active ? modelledBitmapTake(live, i) : Atomics.exchange(live, i, 0);
    if (bits === 0) continue;
    snapshot[i] = bits;
    if (reprotected < 0) reprotected = 0;
    if (protect) reprotected += protectWord(slot.spte, i * WORD_BITS, bits, slot.pageCount);
  }
  return reprotected;
}

/**
 * Manual-protect GET: a plain copy of the live bitmap (copy_to_user); concurrent sets race with
 * it, as in the kernel, and land in the next GET.
 */
export function copyLive(slot: Memslot, out: Uint32Array): void {
  if (mem.active) {
    const live = slot.bitmap!;
    for (let i = 0; i < live.length; i++) out[i] = modelledBitmapLoad(live, i);
    return;
  }
  out.set(slot.bitmapU32!);
}

/** What one CLEAR did: pages whose bit it cleared, pages it made read-only again. */
export interface ClearResult {
  cleared: number;
  reprotected: number;
}

const clearResult: ClearResult = { cleared: 0, reprotected: 0 };

/**
 * CLEAR's core, caller holding mmu_lock and having validated the range: for each 64-page word
 * of the range, clear the user's bits and re-protect only the bits that were actually set.
 * Under the clear-unaligned mutant `firstPage` may be unaligned: the word index is taken from
 * the truncated first page, so bit k lands on page (first & ~63) + k instead of first + k.
 * Returns the pages whose bit was cleared and those re-protected, in one object that the next
 * call reuses (a CLEAR allocates nothing).
 */
export function clearAndProtect(slot: Memslot, firstPage: number, numPages: number, mask: Uint32Array): ClearResult {
  // With the SIMD scan, look for the live words that have a bit set instead: an AND-NOT of a
  // word that is zero changes nothing, and a bit set after the scan passed its word is as if
  // set after this CLEAR (it stays for the next GET). A controlled run keeps the mask scan,
  // whose step points (one per non-zero mask word) its schedules are recorded against.
  if (slot.bitmapScan !== null && !mem.active && !stepHook.active) return clearAndProtectScanned(slot, firstPage, numPages, mask, slot.bitmapScan);
  const startWord = Math.floor(firstPage / PAGES_PER_KERNEL_WORD) * HALVES_PER_KERNEL_WORD;
  const words = bitmapWords(numPages);
  const result = clearResult;
  result.cleared = 0;
  result.reprotected = 0;
  // Otherwise a range of empty masks is the common case: eight of the kernel's 64-page mask
  // words are tested at once, read as BigInts (see Memslot.bitmapU64), and only a group with a
  // bit set is walked word by word. A mask whose bytes are not 8-aligned is scanned as Int32
  // words.
  const mask64 = maskWords64(mask, words);
  const groupWords = SCAN_WORDS * HALVES_PER_KERNEL_WORD;
  let whole = 0;
  if (mask64 !== null) {
    whole = (words / HALVES_PER_KERNEL_WORD) & ~(SCAN_WORDS - 1);
    for (let j = 0; j < whole; j += SCAN_WORDS) {
      if ((mask64[j]! | mask64[j + 1]! | mask64[j + 2]! | mask64[j + 3]! | mask64[j + 4]! | mask64[j + 5]! | mask64[j + 6]! | mask64[j + 7]!) === 0n) continue;
      const w = j * HALVES_PER_KERNEL_WORD;
      if (!clearWords(slot, firstPage, numPages, mask, startWord, w, w + groupWords, result)) return result;
    }
    whole *= HALVES_PER_KERNEL_WORD;
  } else {
    whole = words & ~(SCAN_WORDS - 1);
    for (let w = 0; w < whole; w += SCAN_WORDS) {
      if ((mask[w]! | mask[w + 1]! | mask[w + 2]! | mask[w + 3]! | mask[w + 4]! | mask[w + 5]! | mask[w + 6]! | mask[w + 7]!) === 0) continue;
      if (!clearWords(slot, firstPage, numPages, mask, startWord, w, w + SCAN_WORDS, result)) return result;
    }
  }
  clearWords(slot, firstPage, numPages, mask, startWord, whole, words, result);
  return result;
}

/**
 * clearAndProtect with the SIMD scan `scan` (the slot's), only ever without a weak memory model
 * or a step hook: its path when those are off, and BitmapLogPlan's CLEAR.
 */
export function clearAndProtectScanned(slot: Memslot, firstPage: number, numPages: number, mask: Uint32Array, scan: BitmapScan): ClearResult {
  const result = clearResult;
  result.cleared = 0;
  result.reprotected = 0;
  const startWord = Math.floor(firstPage / PAGES_PER_KERNEL_WORD) * HALVES_PER_KERNEL_WORD;
  clearScanned(slot, firstPage, numPages, mask, startWord, bitmapWords(numPages), result, scan);
  return result;
}

/**
 * CLEAR through the SIMD scan of the live words [startWord, startWord + words): the words
 * before the first 64-byte block boundary and after the last in JavaScript, the blocks between
 * by the scan, whose loop tests nothing but the words (as exchangeScanned's, for the same
 * reason). Live words past the bitmap's end (the clear-unaligned mutant) are never reached.
 */
function clearScanned(
  slot: Memslot,
  firstPage: number,
  numPages: number,
  mask: Uint32Array,
  startWord: number,
  words: number,
  result: ClearResult,
  scan: BitmapScan,
): void {
  const live = slot.bitmap!;
  const spte = slot.spte;
  const endWord = Math.min(startWord + words, live.length);
  const blockStart = Math.min(Math.ceil(startWord / BLOCK_WORDS) * BLOCK_WORDS, endWord);
  const blockEnd = Math.max(blockStart, endWord - (endWord % BLOCK_WORDS));
  if (blockStart > startWord) clearWords(slot, firstPage, numPages, mask, startWord, 0, blockStart - startWord, result);
  const endByte = blockEnd * WORD_BYTES;
  for (let at = scan(blockStart * WORD_BYTES, endByte); at < endByte; at = scan(at + SCAN_BLOCK_BYTES, endByte)) {
    const first = at / WORD_BYTES;
    for (let index = first; index < first + BLOCK_WORDS; index++) {
      const m = mask[index - startWord]! | 0;
      if (m === 0) continue;
      const got = (Atomics.and(live, index, ~m) & m) >>> 0;
      if (got === 0) continue;
      if (coverage.active) noteClearWord(slot, firstPage, numPages, index, got);
      result.cleared += popcount(got);
      result.reprotected += protectBits(spte, index * WORD_BITS, got, slot.pageCount);
    }
  }
  if (endWord > blockEnd) clearWords(slot, firstPage, numPages, mask, startWord, blockEnd - startWord, endWord - startWord, result);
}

/** The last CLEAR mask and its 64-bit view: a collector passes the same buffer every time. */
let lastMask: Uint32Array | null = null;
let lastMask64: BigUint64Array | null = null;

/**
 * `mask`'s first `words` u32 words (an even count) as 64-bit words, or null when its bytes are
 * not 8-aligned. The view of the previous call is reused when it still covers them.
 */
function maskWords64(mask: Uint32Array, words: number): BigUint64Array | null {
  if (mask.byteOffset % BigUint64Array.BYTES_PER_ELEMENT !== 0) return null;
  const n = words / HALVES_PER_KERNEL_WORD;
  if (mask !== lastMask || lastMask64 === null || lastMask64.buffer !== mask.buffer || lastMask64.length < n) {
    lastMask = mask;
    lastMask64 = new BigUint64Array(mask.buffer, mask.byteOffset, n);
  }
  return lastMask64;
}

/**
 * CLEAR over mask words [from, to), adding to `result`; false once a word falls past the end of
 * the bitmap (only the clear-unaligned mutant gets there), where the clear stops.
 */
function clearWords(
  slot: Memslot,
  firstPage: number,
  numPages: number,
  mask: Uint32Array,
  startWord: number,
  from: number,
  to: number,
  result: ClearResult,
): boolean {
  const live = slot.bitmap!;
  for (let w = from; w < to; w++) {
    const m = mask[w]! | 0;
    if (m === 0) continue;
    const index = startWord + w;
    if (index >= live.length) return false;
    if (stepHook.active) stepHook.at(Step.BITMAP_UPDATE, index, m);
    const was = mem.active ? modelledBitmapClear(live, index, m) : Atomics.and(live, index, ~m);
    const got = (was & m) >>> 0;
    if (got === 0) continue;
    if (coverage.active) noteClearWord(slot, firstPage, numPages, index, got);
    result.cleared += popcount(got);
    result.reprotected += protectWord(slot.spte, index * WORD_BITS, got, slot.pageCount);
  }
  return true;
}

/** Set bits of a u32 (the SWAR bit count: pairs, nibbles, then a multiply sums the bytes). */
export function popcount(x: number): number {
  let v = x >>> 0;
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** The page numbers whose bits are set (userspace helper, tests, reports). */
export function bitmapPages(words: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < words.length; i++) {
    let b = words[i]! >>> 0;
    while (b !== 0) {
      const bit = BIT_MASK - Math.clz32(b);
      b = (b & ~(1 << bit)) >>> 0;
      out.push(i * WORD_BITS + bit);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Build a user mask for CLEAR from page numbers relative to `firstPage`. */
export function maskFromPages(numPages: number, relativePages: readonly number[]): Uint32Array {
  const mask = new Uint32Array(Math.max(HALVES_PER_KERNEL_WORD, bitmapWords(numPages)));
  for (const p of relativePages) mask[p >>> WORD_SHIFT] = (mask[p >>> WORD_SHIFT]! | (1 << (p & BIT_MASK))) >>> 0;
  return mask;
}
