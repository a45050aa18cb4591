/** The shared memslot table and each thread's views of it. */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.js';
import { MemslotLayout } from '../../../src/kernel/memslot-layout.js';
import { MemslotTable, allocateSlotBuffers, bitmapBytes } from '../../../src/kernel/memslots.js';

const W = MemslotLayout.words;

function tableWithSlot(pageCount: number, withBitmap = true) {
  const table = new MemslotTable();
  table.attach(0, allocateSlotBuffers(pageCount, withBitmap));
  table.activate(0, { asId: 0, id: 1, pageCount, baseGfn: 0x100 });
  return table;
}

describe('memslot views', () => {
  it('a view describes its entry, and a move makes cached views stale', () => {
    const table = tableWithSlot(16);
    const view = table.at(0)!;
    expect([view.id, view.pageCount, view.baseGfn, view.current]).toEqual([1, 16, 0x100, true]);
    table.move(0, 0x200);
    expect(view.current).toBe(false);
    expect(table.at(0)!.baseGfn).toBe(0x200);
    table.deactivate(0);
    expect(table.at(0)).toBeNull();
  });

  it('a bitmap buffer that does not hold two bitmaps of the slot is refused', () => {
    const table = new MemslotTable();
    const buffers = allocateSlotBuffers(100, false);
    table.attach(0, { ...buffers, bitmap: new SharedArrayBuffer(bitmapBytes(100)) }); // one half only
    table.activate(0, { asId: 0, id: 1, pageCount: 100, baseGfn: 0 });
    expect(() => table.at(0)).toThrow(AssertionError);
  });

  it('a view whose entry changed without a generation bump fails the consistency check', () => {
    const table = tableWithSlot(16);
    table.at(0);
    expect(() => table.checkConsistency()).not.toThrow();
    Atomics.store(table.entry(0).i32, W.NPAGES, 8);
    expect(() => table.checkConsistency()).toThrow(AssertionError);
  });

  it('an entry with no pages fails the consistency check', () => {
    const table = tableWithSlot(16);
    Atomics.store(table.entry(0).i32, W.NPAGES, 0);
    Atomics.add(table.entry(0).i32, W.GENERATION, 1);
    expect(() => table.checkConsistency()).toThrow(AssertionError);
  });
});
