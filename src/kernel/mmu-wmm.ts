/**
 * SPTE words and dirty-bitmap words under a weak memory model: the accesses of the write path,
 * of re-protection and of the bitmap ioctls, each with the ordering the kernel gives it. The
 * callers (vcpu-mmu.ts, ring-reset.ts, dirty-bitmap.ts, memslots.ts) use these only while
 * `mem.active`; otherwise they keep their Atomics paths.
 *
 *  - A vCPU's page walk reads the SPTE with a plain load (READ_ONCE).
 *  - The fast page fault makes it writable with cmpxchg: fully ordered (cmpxchg_relaxed under
 *    the fault-relaxed-writable mutant).
 *  - Write-protecting a page (spte_write_protect, stage2_wp_range) first reads the SPTE plainly
 *    and does nothing if it does not look writable; only then clears WRITABLE atomically. So a
 *    re-protection that has not synchronized with the fault that made the page writable can
 *    skip it: the ordering the fast-fault rule ("writable before dirty") relies on.
 *  - set_bit_le: an atomic OR with no return value (unordered on arm64, locked on x86).
 *  - Legacy GET: a plain read finds non-zero words, xchg takes them (fully ordered); CLEAR's
 *    fetch_andnot is fully ordered; manual-protect GET copies the bitmap with plain reads.
 *
 * Locations: a memslot's SPTEs from the base of its SPTE buffer (one per page), its live bitmap
 * from the base of its bitmap buffer (one per 32-bit word).
 */
import { SpteBits } from './memslot-layout.js';
import { mem } from './wmm/mem.js';
import { Access, Atomic } from './wmm/ordering.js';

const WRITABLE = SpteBits.WRITABLE;

/** The SPTE of `page` as the vCPU's page walk reads it. */
export function modelledSpteLoad(spte: Int32Array, page: number): number {
  return mem.load(spte, page, mem.base(spte.buffer) + page, Access.ONCE);
}

/** The fast fault's compare-and-swap to writable; returns the old value (≠ `old`: lost the race). */
export function modelledSpteMakeWritable(spte: Int32Array, page: number, old: number, relaxed: boolean): number {
  return mem.cmpxchg(spte, page, mem.base(spte.buffer) + page, old, old | WRITABLE, relaxed ? Atomic.RELAXED : Atomic.FULL);
}

/** spte_write_protect: true when the page looked writable and was protected. */
export function modelledWriteProtect(spte: Int32Array, page: number): boolean {
  const loc = mem.base(spte.buffer) + page;
  if ((mem.load(spte, page, loc, Access.ONCE) & WRITABLE) === 0) return false;
  return (mem.and(spte, page, loc, ~WRITABLE, Atomic.FULL) & WRITABLE) !== 0;
}

/** set_bit_le on a live bitmap. */
export function modelledSetBit(bitmap: Int32Array, word: number, bit: number): void {
  mem.or(bitmap, word, mem.base(bitmap.buffer) + word, bit, Atomic.VOID);
}

/** A plain read of a live bitmap word (GET's scan, manual GET's copy). */
export function modelledBitmapLoad(bitmap: Int32Array, word: number): number {
  return mem.load(bitmap, word, mem.base(bitmap.buffer) + word, Access.ONCE);
}

/** xchg(word, 0): legacy GET taking a word. */
export function modelledBitmapTake(bitmap: Int32Array, word: number): number {
  return mem.xchg(bitmap, word, mem.base(bitmap.buffer) + word, 0, Atomic.FULL);
}

/** fetch_andnot(word, mask): CLEAR; returns the old word. */
export function modelledBitmapClear(bitmap: Int32Array, word: number, mask: number): number {
  return mem.and(bitmap, word, mem.base(bitmap.buffer) + word, ~mask, Atomic.FULL);
}

/** A plain store to a live bitmap word (initializing a bitmap when logging starts). */
export function modelledBitmapStore(bitmap: Int32Array, word: number, value: number): void {
  mem.store(bitmap, word, mem.base(bitmap.buffer) + word, value, Access.ONCE);
}
