/**
 * Copying guest pages out of a memslot: what migration does with every page the dirty log
 * reported, after the reset (or CLEAR) that re-protected it has returned. Given a list of page
 * numbers, copy each 4 KiB page from the source slot's memory into a destination
 * SharedArrayBuffer, either at the same page number (`copy`: the destination mirrors the slot)
 * or one after another (`copyPacked`: a stream of pages, as sent over the wire).
 *
 * Allocation-free: the typed-array views are made once, and each page is moved as 1024 Int32
 * words by an unrolled loop (TypedArray.set would need a subarray view — an allocation — per
 * page). The page list is validated first, so a bad list copies nothing. Concurrent guest
 * stores to a page being copied are expected (the page is dirty again and will be reported
 * again); plain loads never tear an aligned word.
 */
import { PAGE_SIZE, PAGE_WORDS } from '../abi/constants.js';
import { GuestPageWords } from '../guest/guest-memory.js';
import type { Memslot } from '../kernel/memslots.js';
import { Step, stepHook } from '../kernel/step-hook.js';

/** Word views a page can be moved between (guest memory, destinations, wire slots). */
export type Words = Int32Array | Uint32Array;

/**
 * Resend accounting, per page: the guest header (writer, sequence, value) of each page as last
 * copied. A copy whose header equals the previous one is a resend — nobody wrote the page in
 * between. Read the header from the copy, not the source: the source may change under the copy.
 */
export class PageHeaderHistory {
  private readonly writer: Uint32Array;
  private readonly seq: Uint32Array;
  private readonly value: Uint32Array;

  constructor(pageCount: number) {
    this.writer = new Uint32Array(pageCount).fill(0xffffffff);
    this.seq = new Uint32Array(pageCount);
    this.value = new Uint32Array(pageCount);
  }

  /** Record page `g` as the page at word `base` of `words`; returns whether it is a resend. */
  record(g: number, words: Words, base: number): boolean {
    const writer = words[base + GuestPageWords.WRITER_VCPU]! >>> 0;
    const seq = words[base + GuestPageWords.WRITER_SEQ]! >>> 0;
    const value = words[base + GuestPageWords.ITERATION_LO]! >>> 0;
    const same = this.writer[g] === writer && this.seq[g] === seq && this.value[g] === value;
    this.writer[g] = writer;
    this.seq[g] = seq;
    this.value[g] = value;
    return same;
  }
}

/**
 * Copy the page at word `srcWord` of `src` to word `dstWord` of `dst`: 1024 words, eight at a
 * time, no views made. Plain loads and stores are enough: a page copied while a vCPU writes it
 * may mix old and new words, and that is fine, because the write is recorded (the page was
 * re-protected before the copy) and the page will be copied again.
 */
export function copyPageWords(src: Words, srcWord: number, dst: Words, dstWord: number): void {
  const end = srcWord + PAGE_WORDS;
  let d = dstWord;
  for (let s = srcWord; s < end; s += 8, d += 8) {
    dst[d] = src[s]!;
    dst[d + 1] = src[s + 1]!;
    dst[d + 2] = src[s + 2]!;
    dst[d + 3] = src[s + 3]!;
    dst[d + 4] = src[s + 4]!;
    dst[d + 5] = src[s + 5]!;
    dst[d + 6] = src[s + 6]!;
    dst[d + 7] = src[s + 7]!;
  }
}

/** Whether two pages are equal word for word. */
export function pageWordsEqual(a: Words, aWord: number, b: Words, bWord: number): boolean {
  const end = aWord + PAGE_WORDS;
  let j = bWord;
  for (let i = aWord; i < end; i++, j++) if (a[i] !== b[j]) return false;
  return true;
}

/**
 * A 32-bit hash of one page (for dirty-rate sampling: QEMU hashes sampled pages at the start
 * and the end of a period). Every word is mixed in, so any guest store changes it, bar a
 * 2^-32 collision.
 */
export function hashPageWords(mem: Words, word: number): number {
  let h = 0x811c9dc5 | 0;
  const end = word + PAGE_WORDS;
  for (let i = word; i < end; i++) {
    h = Math.imul(h ^ mem[i]!, 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** A page list: page numbers relative to the source slot. */
export type PageList = Uint32Array | Int32Array | Float64Array | readonly number[];

export class PageCopier {
  private readonly src: Int32Array;
  private readonly dst: Int32Array;
  /** Pages in the source memory. */
  readonly srcPages: number;
  /** Pages the destination can hold. */
  readonly dstPages: number;

  constructor(source: SharedArrayBuffer, destination: SharedArrayBuffer) {
    if (source.byteLength % PAGE_SIZE !== 0) throw new RangeError(`source is ${source.byteLength} B, not whole pages`);
    this.src = new Int32Array(source);
    this.dst = new Int32Array(destination, 0, Math.floor(destination.byteLength / PAGE_SIZE) * PAGE_WORDS);
    this.srcPages = source.byteLength / PAGE_SIZE;
    this.dstPages = Math.floor(destination.byteLength / PAGE_SIZE);
  }

  /** A copier reading the guest memory of `slot` (this thread's view of it). */
  static fromSlot(slot: Memslot, destination: SharedArrayBuffer): PageCopier {
    return new PageCopier(slot.buffers.memory, destination);
  }

  /**
   * Copy pages[0..count) to the same page numbers of the destination, in list order.
   * Returns the number of pages copied.
   */
  copy(pages: PageList, count: number = pages.length): number {
    this.check(pages, count, -1);
    for (let i = 0; i < count; i++) {
      const p = pages[i]!;
      if (stepHook.active) stepHook.at(Step.USER_READ_PAGE, p, 0);
      this.move(p * PAGE_WORDS, p * PAGE_WORDS);
    }
    return count;
  }

  /**
   * Copy pages[i] to destination page `dstFirst + i`, for i < count. Returns the number of
   * pages copied.
   */
  copyPacked(pages: PageList, count: number = pages.length, dstFirst = 0): number {
    if (!Number.isInteger(dstFirst) || dstFirst < 0) throw new RangeError(`bad destination page ${dstFirst}`);
    this.check(pages, count, dstFirst);
    for (let i = 0; i < count; i++) {
      const p = pages[i]!;
      if (stepHook.active) stepHook.at(Step.USER_READ_PAGE, p, 0);
      this.move(p * PAGE_WORDS, (dstFirst + i) * PAGE_WORDS);
    }
    return count;
  }

  /** Validate the list; `dstFirst` < 0 means mirror mode (each page must also fit the destination). */
  private check(pages: PageList, count: number, dstFirst: number): void {
    if (!Number.isInteger(count) || count < 0 || count > pages.length) {
      throw new RangeError(`page count ${count} (the list holds ${pages.length})`);
    }
    if (dstFirst >= 0 && dstFirst + count > this.dstPages) {
      throw new RangeError(`destination holds ${this.dstPages} pages; ${count} from page ${dstFirst} do not fit`);
    }
    const limit = dstFirst >= 0 ? this.srcPages : Math.min(this.srcPages, this.dstPages);
    for (let i = 0; i < count; i++) {
      const p = pages[i]!;
      if (!(p >= 0 && p < limit && Math.floor(p) === p)) {
        throw new RangeError(`page ${p} at list index ${i} is outside the source (${this.srcPages} pages)${dstFirst < 0 ? ` or the destination (${this.dstPages})` : ''}`);
      }
    }
  }

  private move(from: number, to: number): void {
    copyPageWords(this.src, from, this.dst, to);
  }
}
