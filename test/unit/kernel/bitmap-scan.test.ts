/**
 * The legacy GET's and the CLEAR's grouped scans (eight 64-page words tested at once, read
 * through a 64-bit view) on slots large enough to have whole groups and a tail: every bit is
 * found wherever it sits in a group — the first and last page of a 64-page word (bit 63 of the
 * 64-bit word), of a u32 half, of a group — and CLEAR scans a mask whose bytes are not 8-aligned
 * as well as one that is. Pages are picked from a fixed seed.
 */
import { describe, expect, it } from 'vitest';
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from '../../../src/abi/constants.js';
import { bitmapPages, bitmapWords } from '../../../src/kernel/dirty-bitmap.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { SLOT, bitmapVm } from './bitmap-fixtures.js';

/** 3 whole groups of 512 pages and a tail of 2 64-page words plus 10 pages. */
const PAGES = 3 * 512 + 2 * 64 + 10;
const SEED = 0x5eed;

/** Page numbers at every boundary the scans have, plus a few seeded ones. */
function pagesToDirty(): number[] {
  const set = new Set<number>();
  for (const p of [0, 31, 32, 63, 64, 511, 512, 575, 1023, 1535, 1536, 1599, 1663, 1664, PAGES - 1]) set.add(p);
  let x = SEED;
  for (let i = 0; i < 20; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    set.add(x % PAGES);
  }
  return [...set].sort((a, b) => a - b);
}

/** Each page alone, then all of them: every bit must be found and its page re-protected. */
function cases(): number[][] {
  const all = pagesToDirty();
  return [...all.map((p) => [p]), all];
}

describe('legacy GET: grouped 64-bit scan', () => {
  it('returns and re-protects every page, alone or together, at every group and word boundary', () => {
    const { vm, slot, store, get } = bitmapVm({ pages: PAGES });
    for (const pages of cases()) {
      store(...pages);
      expect(get(), `pages ${pages.join(',')}`).toEqual(pages);
      for (const p of pages) expect(Atomics.load(slot.spte, p) & SpteBits.WRITABLE, `page ${p}`).toBe(0);
      expect(get()).toEqual([]);
    }
    expect(vm.stats().pagesReprotected).toBe(cases().reduce((n, c) => n + c.length, 0));
  });
});

describe('CLEAR: grouped 64-bit scan of the mask', () => {
  for (const byteOffset of [0, 4, 8]) {
    it(`clears and re-protects exactly the mask's pages (mask at byte offset ${byteOffset})`, () => {
      const { vm, slot, store } = bitmapVm({ pages: PAGES, manual: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE });
      const words = bitmapWords(PAGES);
      const buffer = new ArrayBuffer(byteOffset + words * 4);
      const mask = new Uint32Array(buffer, byteOffset, words);
      const live = new Uint32Array(words);
      for (const pages of cases()) {
        store(...pages);
        vm.getDirtyLog(SLOT, mask);
        expect(bitmapPages(mask)).toEqual(pages);
        vm.clearDirtyLog(SLOT, 0, PAGES, mask);
        vm.getDirtyLog(SLOT, live);
        expect(bitmapPages(live), `pages ${pages.join(',')}`).toEqual([]);
        for (const p of pages) expect(Atomics.load(slot.spte, p) & SpteBits.WRITABLE, `page ${p}`).toBe(0);
      }
      // A mask naming only some of the dirty pages clears only those.
      const all = pagesToDirty();
      store(...all);
      mask.fill(0);
      const half = all.filter((_, i) => i % 2 === 0);
      for (const p of half) mask[p >>> 5] = (mask[p >>> 5]! | (1 << (p & 31))) >>> 0;
      vm.clearDirtyLog(SLOT, 0, PAGES, mask);
      vm.getDirtyLog(SLOT, live);
      expect(bitmapPages(live)).toEqual(all.filter((_, i) => i % 2 === 1));
    });
  }
});
