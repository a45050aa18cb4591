/** The reset walk's coalescing of offsets into 64-bit masks, and the batch's invariant. */
import { describe, expect, it } from 'vitest';
import { AssertionError, debugChecks } from '../../../src/base/assert.js';
import { ResetBatch, highestBit } from '../../../src/kernel/reset-batch.js';

describe('ResetBatch: the kernel coalescing of offsets into 64-bit masks', () => {
  type Batch = [slot: number, offset: number, mask: bigint];
  function coalesce(entries: [number, number | bigint][]): Batch[] {
    const out: Batch[] = [];
    const batch = new ResetBatch();
    const sink = (slot: number, lo: number, hi: number, mlo: number, mhi: number): void => {
      out.push([slot, hi * 2 ** 32 + lo, (BigInt(mhi) << 32n) | BigInt(mlo)]);
    };
    for (const [slot, off] of entries) {
      const o = BigInt.asUintN(64, BigInt(off));
      batch.add(slot, Number(o & 0xffffffffn), Number(o >> 32n), sink);
    }
    batch.finish(sink);
    return out;
  }

  it('forward: offsets within 64 of the batch start share one mask', () => {
    expect(coalesce([[1, 100], [1, 101], [1, 103], [1, 163]])).toEqual([[1, 100, (1n << 63n) | 0b1011n]]);
  });
  it('forward: 64 or more past the start opens a new batch', () => {
    expect(coalesce([[1, 100], [1, 164]])).toEqual([
      [1, 100, 1n],
      [1, 164, 1n],
    ]);
  });
  it('backward: a lower offset moves the batch start down when no bit falls off', () => {
    expect(coalesce([[1, 10], [1, 9], [1, 8]])).toEqual([[1, 8, 0b111n]]);
    expect(coalesce([[1, 100], [1, 150], [1, 90]])).toEqual([[1, 90, (1n << 60n) | (1n << 10n) | 1n]]);
  });
  it('backward: a shift that would lose a set bit flushes instead', () => {
    expect(coalesce([[1, 100], [1, 163], [1, 99]])).toEqual([
      [1, 100, (1n << 63n) | 1n],
      [1, 99, 1n],
    ]);
  });
  it('backward by 64 or more, or a different slot, flushes', () => {
    expect(coalesce([[1, 200], [1, 136]])).toEqual([
      [1, 200, 1n],
      [1, 136, 1n],
    ]);
    expect(coalesce([[1, 5], [2, 6], [1, 7]])).toEqual([
      [1, 5, 1n],
      [2, 6, 1n],
      [1, 7, 1n],
    ]);
  });
  it('duplicates set the same bit', () => {
    expect(coalesce([[1, 5], [1, 5], [1, 6]])).toEqual([[1, 5, 0b11n]]);
  });
  it('u64 wrap: 0xffff…ffc1 then 0 coalesce (delta wraps to 63), as in 577a8d3bae05', () => {
    expect(coalesce([[1, 0xffffffffffffffc1n], [1, 0]])).toEqual([[1, 2 ** 64 - 63, (1n << 63n) | 1n]]);
  });
  it('highestBit is __fls over both halves', () => {
    expect(highestBit(1, 0)).toBe(0);
    expect(highestBit(0x80000000, 0)).toBe(31);
    expect(highestBit(1, 1)).toBe(32);
    expect(highestBit(0, 0x80000000)).toBe(63);
    expect(highestBit(0, 0)).toBe(-1);
  });
});

describe('ResetBatch invariants (debug)', () => {
  const sink = (): void => {};
  function openBatch(): ResetBatch {
    const batch = new ResetBatch();
    batch.add(1, 100, 0, sink);
    batch.add(1, 105, 0, sink);
    return batch;
  }

  it.runIf(debugChecks)('an open batch whose mask lost the bit of its own offset fails at the next step', () => {
    const a = openBatch();
    a.maskLo = 0b100000; // bit 0 (offset 100) gone
    expect(() => a.add(1, 101, 0, sink)).toThrow(AssertionError);
    const b = openBatch();
    b.maskLo = 0;
    expect(() => b.finish(sink)).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('a half out of u32 range fails', () => {
    const batch = openBatch();
    batch.maskHi = -1;
    expect(() => batch.finish(sink)).toThrow(AssertionError);
    const off = openBatch();
    off.offLo = 2 ** 32;
    expect(() => off.add(1, 7, 0, sink)).toThrow(AssertionError);
  });

  it('a closed batch holds no invariant: finishing twice is fine', () => {
    const batch = openBatch();
    const flushed: number[] = [];
    batch.finish((_s, lo) => flushed.push(lo));
    batch.finish((_s, lo) => flushed.push(lo));
    expect(flushed).toEqual([100]);
  });
});
