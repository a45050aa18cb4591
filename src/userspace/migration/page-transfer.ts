/**
 * Moving one 4 KiB page between Int32 views of guest, wire and destination memory: the copy
 * routine of every migration send. Allocation-free (no subarray views): 1024 words in an
 * unrolled loop. Plain loads and stores are enough: a page copied while a vCPU writes it may
 * mix old and new words, and that is fine, because the write is recorded (the page was
 * re-protected before the copy) and the page is sent again in a later round.
 */
import { PAGE_WORDS } from '../../abi/constants.js';

/** Copy the page at word `srcWord` of `src` to word `dstWord` of `dst`. */
export function copyPageWords(src: Int32Array, srcWord: number, dst: Int32Array, dstWord: number): void {
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
export function pageWordsEqual(a: Int32Array, aWord: number, b: Int32Array, bWord: number): boolean {
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
export function hashPageWords(mem: Int32Array, word: number): number {
  let h = 0x811c9dc5 | 0;
  const end = word + PAGE_WORDS;
  for (let i = word; i < end; i++) {
    h = Math.imul(h ^ mem[i]!, 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}
