/**
 * The SIMD scan of large bitmaps (src/kernel/bitmap-simd-scan.ts): the scan alone against a
 * reference, then GET and CLEAR on a slot that has it against the same slot scanning in
 * JavaScript (Memslot.bitmapScan set to null), at every block and word boundary, with CLEAR
 * ranges that start and end inside a 64-byte block. The Memory goes to another thread with the
 * slot's buffers (structured clone) and scans there too.
 */
import fc from 'fast-check';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from '../../../src/abi/constants.js';
import { SCAN_BLOCK_BYTES, allocateBitmap, bitmapScanner } from '../../../src/kernel/bitmap-simd-scan.js';
import { bitmapPages, bitmapWords, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import type { Memslot, SlotBuffers } from '../../../src/kernel/memslots.js';
import { SLOT, bitmapVm } from './bitmap-fixtures.js';

/** 1 GiB and a tail of 2 64-page words plus 10 pages: 512 whole blocks, 24 bytes after them. */
const PAGES = 262144 + 2 * 64 + 10;
const BLOCK_PAGES = SCAN_BLOCK_BYTES * 8;

describe('the scan alone', () => {
  it('finds the first 64-byte block with a non-zero byte, from any block to any block', () => {
    const bytes = 4 * 65536;
    const { buffer, memory } = allocateBitmap(bytes);
    expect(memory, 'this Node has WebAssembly SIMD and shared memories').not.toBeNull();
    const scan = bitmapScanner(memory)!;
    const u8 = new Uint8Array(buffer);
    const blocks = bytes / SCAN_BLOCK_BYTES;
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(bytes - 1), { maxLength: 12 }), fc.nat(blocks), fc.nat(blocks), (set, a, b) => {
        u8.fill(0);
        for (const at of set) u8[at] = 1 + (at % 255);
        const from = Math.min(a, b) * SCAN_BLOCK_BYTES;
        const to = Math.max(a, b) * SCAN_BLOCK_BYTES;
        const hits = set.filter((at) => at >= from && at < to).map((at) => at - (at % SCAN_BLOCK_BYTES));
        expect(scan(from, to)).toBe(hits.length ? Math.min(...hits) : to);
      }),
      { seed: 0x5ca9, numRuns: 300 },
    );
  });

  it('is given only to bitmaps of 64 KiB and more', () => {
    expect(allocateBitmap(65536 - 8).memory).toBeNull();
    expect(allocateBitmap(65536 - 8).buffer.byteLength).toBe(65536 - 8);
    expect(allocateBitmap(65536 + 8).buffer.byteLength).toBe(2 * 65536);
  });
});

/** Page numbers at every block, word and half boundary, and around the tail. */
function pagesToDirty(): number[] {
  const set = new Set<number>([0, 31, 32, 63, 64, BLOCK_PAGES - 1, BLOCK_PAGES, 3 * BLOCK_PAGES + 33]);
  for (const p of [262143, 262144, 262144 + 63, 262144 + 64, PAGES - 1]) set.add(p);
  let x = 0x5eed;
  for (let i = 0; i < 24; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    set.add(x % PAGES);
  }
  return [...set].sort((a, b) => a - b);
}

/** The same slot twice: one scanning in SIMD, one in JavaScript. */
function twins(manual: number) {
  const simd = bitmapVm({ pages: PAGES, manual });
  const js = bitmapVm({ pages: PAGES, manual });
  expect(simd.slot.bitmapScan).not.toBeNull();
  js.slot.bitmapScan = null;
  return [simd, js] as const;
}

function writable(slot: Memslot, pages: readonly number[]): number[] {
  return pages.filter((p) => (Atomics.load(slot.spte, p) & SpteBits.WRITABLE) !== 0);
}

describe('legacy GET with the SIMD scan', () => {
  it('takes and re-protects the same pages as the JavaScript scan, alone or together', () => {
    const all = pagesToDirty();
    for (const side of twins(0)) {
      for (const pages of [...all.map((p) => [p]), all]) {
        side.store(...pages);
        expect(side.get(), `pages ${pages.join(',')}`).toEqual(pages);
        expect(writable(side.slot, pages)).toEqual([]);
        expect(side.get()).toEqual([]);
      }
      expect(side.vm.stats().pagesReprotected).toBe(all.length * 2);
    }
  });
});

describe('CLEAR with the SIMD scan', () => {
  // Ranges of 64-page words that start and end inside a block, at the slot's start and end,
  // and the whole slot.
  const ranges: [number, number][] = [
    [0, PAGES],
    [64, 3 * BLOCK_PAGES],
    [BLOCK_PAGES + 128, 64],
    [262144 - 64, PAGES - (262144 - 64)],
    [262144 + 64, PAGES - 262144 - 64],
  ];
  for (const [first, num] of ranges) {
    it(`clears exactly what the JavaScript scan clears (first_page ${first}, num_pages ${num})`, () => {
      const all = pagesToDirty();
      const inRange = all.filter((p) => p >= first && p < first + num);
      const outcomes = twins(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE).map((side) => {
        side.store(...all);
        // A mask naming every other dirty page of the range, and some clean pages.
        const named = inRange.filter((_, i) => i % 2 === 0);
        const clean = [1, 65, 700].filter((r) => r < num && !all.includes(first + r));
        const mask = maskFromPages(num, [...named.map((p) => p - first), ...clean]);
        side.vm.clearDirtyLog(SLOT, first, num, mask);
        const live = new Uint32Array(bitmapWords(PAGES));
        side.vm.getDirtyLog(SLOT, live);
        expect(bitmapPages(live)).toEqual(all.filter((p) => !named.includes(p)));
        return { live: bitmapPages(live), writable: writable(side.slot, all), stats: side.vm.stats().pagesReprotected };
      });
      expect(outcomes[0]).toEqual(outcomes[1]);
    });
  }

  it('leaves a mask word whose live word is zero alone, and says no bit was cleared', () => {
    const [simd] = twins(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
    simd.clear(0, PAGES, [5, BLOCK_PAGES * 7]);
    expect(simd.vm.stats().pagesReprotected).toBe(0);
    expect(simd.get()).toEqual([]);
  });
});

describe('the Memory in another thread', () => {
  it('is cloned with the slot buffers, and the other side scans the same bytes', () => {
    const { slot } = bitmapVm({ pages: PAGES });
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(slot.buffers);
    const received = receiveMessageOnPort(port2)!.message as SlotBuffers;
    port1.close();
    expect(received.bitmapMemory).toBeInstanceOf(WebAssembly.Memory);
    const scan = bitmapScanner(received.bitmapMemory)!;
    Atomics.or(slot.bitmap!, 100, 1);
    expect(scan(0, 32768)).toBe(Math.floor((100 * 4) / SCAN_BLOCK_BYTES) * SCAN_BLOCK_BYTES);
    Atomics.store(slot.bitmap!, 100, 0);
  });
});
