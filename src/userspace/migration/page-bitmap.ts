/**
 * A userspace bitmap over every page of the migrated memslots, numbered globally (slot after
 * slot): what QEMU keeps per RAMBlock. Bit n = global page n. Single-threaded (userspace's
 * migration loop only), so plain stores; allocation-free.
 */
import { popcount } from '../../kernel/dirty-bitmap.js';

export class PageBitmap {
  readonly words: Uint32Array;

  constructor(readonly pageCount: number) {
    this.words = new Uint32Array(Math.ceil(pageCount / 32));
  }

  /** Set page `g`; true when it was clear. */
  set(g: number): boolean {
    const i = g >>> 5;
    const bit = 1 << (g & 31);
    const w = this.words[i]!;
    if ((w & bit) !== 0) return false;
    this.words[i] = (w | bit) >>> 0;
    return true;
  }

  has(g: number): boolean {
    return (this.words[g >>> 5]! & (1 << (g & 31))) !== 0;
  }

  clear(g: number): void {
    const i = g >>> 5;
    this.words[i] = (this.words[i]! & ~(1 << (g & 31))) >>> 0;
  }

  setAll(): void {
    this.words.fill(0xffffffff);
    const rest = this.pageCount & 31;
    if (rest !== 0) this.words[this.words.length - 1] = ((1 << rest) - 1) >>> 0;
  }

  clearAll(): void {
    this.words.fill(0);
  }

  count(): number {
    let n = 0;
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== 0) n += popcount(this.words[i]!);
    return n;
  }

  /** The first set page at or after `from`, or -1. */
  nextSet(from: number): number {
    if (from >= this.pageCount) return -1;
    let i = from >>> 5;
    let w = (this.words[i]! & (0xffffffff << (from & 31))) >>> 0;
    const n = this.words.length;
    while (w === 0) {
      if (++i >= n) return -1;
      w = this.words[i]!;
    }
    return i * 32 + (31 - Math.clz32(w & -w));
  }

  /** OR `other` into this and clear `other`; returns the pages that were newly set here. */
  absorb(other: PageBitmap): number {
    let added = 0;
    const a = this.words;
    const b = other.words;
    for (let i = 0; i < a.length; i++) {
      const v = b[i]!;
      if (v === 0) continue;
      const fresh = (v & ~a[i]!) >>> 0;
      if (fresh !== 0) added += popcount(fresh);
      a[i] = (a[i]! | v) >>> 0;
      b[i] = 0;
    }
    return added;
  }
}
