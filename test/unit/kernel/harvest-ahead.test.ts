/**
 * harvestRing's free-running loop acquires one entry in a run of up to 64 and reads the flags
 * of the entries before it plainly (acquireAhead). What it collects must be exactly what one
 * acquire per entry collects — the stepped harvest, which every harvest takes while step points
 * are active: same entries in the same order, stopping at the same non-DIRTY entry, never past
 * `max`, across ring wrap-arounds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, encodeSlot } from '../../../src/abi/constants.js';
import { SharedBlock } from '../../../src/abi/layout.js';
import { Prng } from '../../../src/base/prng.js';
import { DirtyRing, type HarvestCursor, harvestRing, writeRawEntry } from '../../../src/kernel/dirty-ring.js';
import { pinStepPoints } from '../../../src/kernel/step-hook.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';

const SLOT = encodeSlot(0, 1);
/** Neither exactly DIRTY (not harvested) nor RESET (not consumed by a reset): a hostile value. */
const HOSTILE = KVM_DIRTY_GFN_F_DIRTY | 4;

function ring(entries: number): DirtyRing {
  return new DirtyRing(new SharedArrayBuffer(entries * 16), new SharedBlock(VcpuLayout), { onOverflow: () => {} });
}

/** Userspace's part of a reset: what the kernel's walk does to entries marked RESET (flags 0, reset_index on). */
function consumeReset(r: DirtyRing): number {
  let idx = r.resetIndexShared;
  let n = 0;
  while ((r.entryFlags(idx) & KVM_DIRTY_GFN_F_RESET) !== 0) {
    Atomics.store(r.i32, (idx & r.mask) * 4, 0);
    idx = (idx + 1) >>> 0;
    n++;
  }
  Atomics.store(r.ctl, VcpuLayout.words.RESET_INDEX, idx | 0);
  return n;
}

function harvest(r: DirtyRing, cursor: HarvestCursor, max: number): number[] {
  const got: number[] = [];
  harvestRing({ i32: r.i32, u32: r.u32, entryCount: r.size }, cursor, max, (_s, lo) => got.push(lo));
  return got;
}

/**
 * A seeded script of pushes, harvests of random sizes, resets, and now and then a hostile
 * userspace write of a non-DIRTY flags value onto an entry that waits to be harvested.
 */
function script(seed: number, stepped: boolean): number[][] {
  pinStepPoints(stepped);
  const prng = new Prng(seed);
  const r = ring(256);
  const cursor = { fetchIndex: 0 };
  const out: number[][] = [];
  let offset = 0;
  for (let round = 0; round < 400; round++) {
    const room = r.softLimit - r.used();
    const pushes = prng.nextU32() % (room + 1);
    for (let k = 0; k < pushes; k++) r.push(SLOT, offset++, 0);
    if (pushes > 3 && prng.nextU32() % 8 === 0) {
      // Hostile: an entry in the middle of the pushed run gets a flags value no side accepts.
      const idx = (r.dirtyIndexShared - 1 - (prng.nextU32() % pushes)) >>> 0;
      writeRawEntry({ i32: r.i32, u32: r.u32, entryCount: r.size }, idx, HOSTILE, SLOT, 0n);
    }
    const max = [1, 63, 64, 65, 200, Number.MAX_SAFE_INTEGER][prng.nextU32() % 6]!;
    out.push(harvest(r, cursor, max));
    consumeReset(r);
    // A harvest stops at a hostile entry (and so does the reset): hand it back as RESET and go on.
    if (r.entryFlags(cursor.fetchIndex) === HOSTILE) {
      Atomics.store(r.i32, (cursor.fetchIndex & r.mask) * 4, KVM_DIRTY_GFN_F_RESET);
      cursor.fetchIndex = (cursor.fetchIndex + 1) >>> 0;
      consumeReset(r);
    }
  }
  return out;
}

describe('harvestRing: one acquire per run of entries', () => {
  afterEach(() => pinStepPoints(false));

  it('collects a full run in order, and no more than max', () => {
    const r = ring(4096);
    for (let i = 0; i < 4000; i++) r.push(SLOT, i, 0);
    const cursor = { fetchIndex: 0 };
    expect(harvest(r, cursor, 70)).toEqual(Array.from({ length: 70 }, (_, i) => i));
    expect(harvest(r, cursor, Number.MAX_SAFE_INTEGER)).toEqual(Array.from({ length: 3930 }, (_, i) => 70 + i));
    expect(cursor.fetchIndex).toBe(4000);
    for (let i = 0; i < 4000; i++) expect(r.entryFlags(i)).toBe(KVM_DIRTY_GFN_F_RESET);
  });

  it('stops at a non-DIRTY entry inside a run it already acquired past', () => {
    const r = ring(4096);
    for (let i = 0; i < 200; i++) r.push(SLOT, i, 0);
    writeRawEntry({ i32: r.i32, u32: r.u32, entryCount: r.size }, 30, HOSTILE, SLOT, 30n);
    const cursor = { fetchIndex: 0 };
    expect(harvest(r, cursor, Number.MAX_SAFE_INTEGER)).toHaveLength(30);
    expect(cursor.fetchIndex).toBe(30);
  });

  for (const seed of [7, 8, 9]) {
    it(`collects what per-entry acquires collect, across wrap-arounds (seed ${seed})`, () => {
      const stepped = script(seed, true);
      const free = script(seed, false);
      expect(stepped.flat().length, `seed ${seed}: the script harvested too little to test anything`).toBeGreaterThan(10_000);
      expect(free).toEqual(stepped);
    });
  }
});
