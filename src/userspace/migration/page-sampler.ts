/**
 * Dirty-rate by page sampling (QEMU's calc-dirty-rate default mode): pick a random sample of
 * pages, hash each at the start of the period and again at its end; the share of sampled
 * pages whose hash changed, times the memory size, over the period, is the dirty rate. Needs
 * no dirty logging at all — and sees a page written ten times as one dirty page, like a
 * migration round would.
 */
import { PAGE_WORDS } from '../../abi/constants.js';
import { Prng, deriveSeed } from '../../base/prng.js';
import { hashPageWords } from '../page-copy.js';

export class PageSampler {
  /** Sampled pages as (memslot index, page) pairs. */
  readonly slotOf: Int32Array;
  readonly pageOf: Int32Array;
  private readonly hashes: Uint32Array;

  constructor(
    private readonly memories: readonly Int32Array[],
    sampleCount: number,
    seed: number,
  ) {
    const pageCounts = memories.map((m) => m.length / PAGE_WORDS);
    const total = pageCounts.reduce((a, b) => a + b, 0);
    const n = Math.max(1, Math.min(total, Math.floor(sampleCount)));
    this.slotOf = new Int32Array(n);
    this.pageOf = new Int32Array(n);
    this.hashes = new Uint32Array(n);
    // A uniform sample without replacement by rejection: draw page numbers, skip repeats (a
    // Set). Cheap while the sample is a small share of memory, as QEMU's density makes it;
    // near n = total the repeats make it slow, but it still ends.
    const prng = new Prng(deriveSeed(seed, 0x5a3b1e));
    const chosen = new Set<number>();
    let k = 0;
    while (k < n) {
      const g = prng.below(total);
      if (chosen.has(g)) continue;
      chosen.add(g);
      let s = 0;
      let p = g;
      while (p >= pageCounts[s]!) p -= pageCounts[s++]!;
      this.slotOf[k] = s;
      this.pageOf[k] = p;
      k++;
    }
  }

  get size(): number {
    return this.hashes.length;
  }

  /** Hash every sampled page (the start of a period). */
  snapshot(): void {
    for (let i = 0; i < this.hashes.length; i++) {
      this.hashes[i] = hashPageWords(this.memories[this.slotOf[i]!]!, this.pageOf[i]! * PAGE_WORDS);
    }
  }

  /** Sampled pages whose hash differs from the snapshot (the end of a period). */
  changed(): number {
    let n = 0;
    for (let i = 0; i < this.hashes.length; i++) {
      if (hashPageWords(this.memories[this.slotOf[i]!]!, this.pageOf[i]! * PAGE_WORDS) !== this.hashes[i]) n++;
    }
    return n;
  }
}
