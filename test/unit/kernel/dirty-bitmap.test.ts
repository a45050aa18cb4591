/** A memslot's dirty bitmap: its size, bit order, fresh state and the helpers userspace uses. */
import { describe, expect, it } from 'vitest';
import { bitmapPages, bitmapWords, initBitmap, maskFromPages, popcount, setDirtyBit } from '../../../src/kernel/dirty-bitmap.js';
import { Vm } from '../../../src/kernel/vm.js';

describe('bitmap size and bit order', () => {
  it('is rounded up to 64 pages: an even number of u32 words', () => {
    expect([0, 1, 64, 65, 100, 128].map(bitmapWords)).toEqual([0, 2, 2, 4, 4, 4]);
    expect(Vm.bitmapBytes(100)).toBe(16);
  });
  it('bit n is page n, little-endian within each word', () => {
    const words = new Int32Array(4);
    for (const p of [0, 31, 32, 99]) setDirtyBit(words, p);
    expect([...words].map((w) => w >>> 0)).toEqual([0x80000001, 1, 0, 1 << 3]);
    expect(bitmapPages(words)).toEqual([0, 31, 32, 99]);
  });
  it('maskFromPages and bitmapPages are inverse; popcount counts set bits', () => {
    const mask = maskFromPages(100, [1, 2, 70]);
    expect(bitmapPages(mask)).toEqual([1, 2, 70]);
    expect(popcount(0xffffffff)).toBe(32);
    expect(popcount(0x80000001)).toBe(2);
    expect(popcount(0)).toBe(0);
  });
});

describe('initBitmap', () => {
  function loggedSlot(pages: number) {
    const vm = Vm.create();
    return vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: pages, logDirty: true });
  }
  it('all set: every page bit, padding bits 0; the snapshot half is zeroed', () => {
    const slot = loggedSlot(100);
    slot.bitmapSnapshot!.fill(7);
    initBitmap(slot, true);
    expect([...slot.bitmap!].map((w) => w >>> 0)).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xf]);
    expect([...slot.bitmapSnapshot!]).toEqual([0, 0, 0, 0]);
    initBitmap(slot, false);
    expect([...slot.bitmap!]).toEqual([0, 0, 0, 0]);
  });
  it('a page count that fills whole words leaves no partial word', () => {
    const slot = loggedSlot(64);
    initBitmap(slot, true);
    expect([...slot.bitmap!].map((w) => w >>> 0)).toEqual([0xffffffff, 0xffffffff]);
  });
});
