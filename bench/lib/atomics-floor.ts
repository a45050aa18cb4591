/**
 * The floor of the emulator's reset, GET and CLEAR in this JavaScript engine: only the Atomics
 * operations that their ordering rules require, in a bare loop over arrays of the emulator's
 * layout, and nothing else (no coalescing, no checks, no statistics). Timed next to native C in
 * the kernel section, it bounds the ratio any implementation of the same protocol can reach
 * here: a ratio against native C above the floor's is impossible without fewer Atomics.
 *
 * Per case, the operations counted:
 *  - reset of N entries: per entry the acquire load of its flags and the atomic AND that
 *    write-protects its page; per coalesced batch the mmu_lock round (compare-and-swap to take
 *    it, one atomic to release it, as SharedMutex does);
 *  - legacy GET with every 32-page word dirty: one exchange per non-zero word, one AND per page;
 *  - CLEAR of the same pages: one AND per non-zero mask word, one AND per page.
 */
import { now } from './timing.js';

const SLOT_PAGES = 262144;
const RING_WORDS = 8192 * 4;
const WRITABLE = 1;
const PAGES_PER_WORD = 32;
const BATCH_PAGES = 64;

export class AtomicsFloor {
  private readonly ring = new Int32Array(new SharedArrayBuffer(RING_WORDS * 4));
  private readonly spte = new Int32Array(new SharedArrayBuffer(SLOT_PAGES * 4));
  private readonly bitmap = new Int32Array(new SharedArrayBuffer((SLOT_PAGES / PAGES_PER_WORD) * 4));
  private readonly lock = new Int32Array(new SharedArrayBuffer(4));
  private sink = 0;

  /** A reset of `count` entries, pages `stride` apart; returns µs. */
  reset(stride: number, count: number): number {
    const { ring, spte, lock } = this;
    for (let i = 0; i < count; i++) ring[i * 4] = 2;
    const perBatch = stride >= BATCH_PAGES ? 1 : BATCH_PAGES / stride;
    const t0 = now();
    let acc = 0;
    for (let i = 0; i < count; i += perBatch) {
      for (let k = i; k < i + perBatch; k++) acc |= Atomics.load(ring, k * 4);
      Atomics.compareExchange(lock, 0, 0, 1);
      for (let k = i; k < i + perBatch; k++) Atomics.and(spte, k * stride, ~WRITABLE);
      Atomics.sub(lock, 0, 1);
    }
    const us = (now() - t0) * 1000;
    this.sink ^= acc;
    return us;
  }

  /** Legacy GET of `pages` dirty pages spread over the slot, each word holding some; µs. */
  get(pages: number): number {
    const { spte, bitmap } = this;
    const stride = SLOT_PAGES / pages;
    for (let i = 0; i < pages; i++) bitmap[(i * stride) >>> 5] = 1;
    const t0 = now();
    for (let w = 0; w < bitmap.length; w++) {
      if (bitmap[w] === 0) continue;
      Atomics.exchange(bitmap, w, 0);
    }
    for (let i = 0; i < pages; i++) Atomics.and(spte, i * stride, ~WRITABLE);
    return (now() - t0) * 1000;
  }

  /** CLEAR of `pages` dirty pages spread over the slot (GET not included); µs. */
  clear(pages: number): number {
    const { spte, bitmap } = this;
    const stride = SLOT_PAGES / pages;
    const step = Math.max(1, stride / PAGES_PER_WORD);
    const t0 = now();
    for (let w = 0; w < bitmap.length; w += step) Atomics.and(bitmap, w, 0);
    for (let i = 0; i < pages; i++) Atomics.and(spte, i * stride, ~WRITABLE);
    return (now() - t0) * 1000;
  }

  /** Keeps the loads observable. */
  get checksum(): number {
    return this.sink;
  }
}
