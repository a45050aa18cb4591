/**
 * The unobserved reset walk (ring-reset-walk.ts, with its inlined forward merge) against the
 * general loop of DirtyRing.resetWalk, which a pending-signal callback that never fires selects:
 * on seeded rings with forward and backward runs, duplicates, other slots, offsets near the u64
 * wrap, flags other than RESET and a start index near 2^32, both must emit the same batches,
 * consume the same entries, zero the same flags and publish the same reset_index.
 */
import { describe, expect, it } from 'vitest';
import { ringViews } from '../../../src/abi/dirty-gfn.js';
import { SharedBlock } from '../../../src/abi/layout.js';
import { Prng } from '../../../src/base/prng.js';
import { DirtyRing, writeRawEntry } from '../../../src/kernel/dirty-ring.js';
import { ResetBatch } from '../../../src/kernel/reset-batch.js';
import { fastResetWalk } from '../../../src/kernel/ring-reset-walk.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';

const V = VcpuLayout.words;
const ENTRIES = 256;

function ringAt(start: number): DirtyRing {
  const vcpu = new SharedBlock(VcpuLayout);
  Atomics.store(vcpu.i32, V.DIRTY_INDEX, start | 0);
  Atomics.store(vcpu.i32, V.RESET_INDEX, start | 0);
  return new DirtyRing(new SharedArrayBuffer(ENTRIES * 16), vcpu, { onOverflow: () => {} });
}

/** Fill both rings identically: mostly RESET entries whose offsets follow a seeded walk. */
function fill(rings: readonly DirtyRing[], rng: Prng, start: number): void {
  const wrapBase = 2n ** 64n - 200n;
  let off = rng.below(2) === 0 ? BigInt(rng.below(1 << 20)) : wrapBase + BigInt(rng.below(150));
  let slot = rng.below(3);
  const n = rng.below(ENTRIES + 1);
  for (let k = 0; k < ENTRIES; k++) {
    const move = rng.below(10);
    if (move < 5) off += 1n;
    else if (move === 5) off -= BigInt(1 + rng.below(70));
    else if (move === 6) off += BigInt(rng.below(130));
    else if (move === 7) slot = rng.below(3);
    // duplicates (move 8, 9) keep the offset
    off = BigInt.asUintN(64, off);
    const flags = k < n ? (rng.below(40) === 0 ? 1 : 2 | rng.below(2)) : rng.below(2);
    for (const r of rings) writeRawEntry(ringViews(r.i32), (start + k) >>> 0, flags, slot, off);
  }
}

describe('fast reset walk = general reset walk', () => {
  it('same batches, counts, flags and reset_index on seeded rings', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Prng(seed);
      const start = rng.below(2) === 0 ? rng.below(ENTRIES * 4) : 2 ** 32 - rng.below(ENTRIES);
      const general = ringAt(start);
      const fast = ringAt(start);
      fill([general, fast], rng, start);
      const batches: [number[], number[]] = [[], []];
      const sinkOf = (out: number[]) => (s: number, lo: number, hi: number, mlo: number, mhi: number): void => {
        out.push(s, lo, hi, mlo, mhi);
      };
      const alreadyCleared = rng.below(4) === 0 ? 0x7fffffff - rng.below(ENTRIES) : rng.below(1000);
      const nGeneral = general.resetWalk(new ResetBatch(), sinkOf(batches[0]), alreadyCleared, () => false);
      const nFast = fastResetWalk(fast, new ResetBatch(), sinkOf(batches[1]), alreadyCleared);
      const where = `seed ${seed}`;
      expect(nFast, where).toBe(nGeneral);
      expect(batches[1], where).toEqual(batches[0]);
      expect(Array.from(fast.i32), where).toEqual(Array.from(general.i32));
      expect(fast.resetIndexShared, where).toBe(general.resetIndexShared);
    }
  });
});
