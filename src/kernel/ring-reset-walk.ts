/**
 * The reset walk of one ring when nothing observes it (no step hook, no coverage, no debug
 * checks, no pending-signal callback, no weak memory model): `DirtyRing.resetWalk` hands the walk
 * here, and it does the same as the general loop there — the same acquire load of each entry's
 * flags, the same payload reads, plain store of 0 and coalescing, reset_index published once
 * by an exchange — with the per-entry tests of the observers left out.
 */
import { INT_MAX, KVM_DIRTY_GFN_F_RESET } from '../abi/constants.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords } from '../abi/dirty-gfn.js';
import { assert } from '../base/assert.js';
import type { ResetBatch, ResetBatchSink } from './reset-batch.js';
import { VcpuLayout } from './vcpu-layout.js';

/**
 * The literals the walk uses in place of these definitions, checked here when the module loads:
 * V8 (11.3) reloads an imported or module-level binding used in a loop, with a hole check, at
 * every use, where a literal is folded into the instruction.
 */
const WALK_LITERALS: readonly [number, number][] = [
  [DIRTY_GFN_WORDS, 4],
  [DirtyGfnWords.FLAGS, 0],
  [DirtyGfnWords.SLOT, 1],
  [DirtyGfnWords.OFFSET_LO, 2],
  [DirtyGfnWords.OFFSET_HI, 3],
  [KVM_DIRTY_GFN_F_RESET, 2],
  [INT_MAX, 0x7fffffff],
  [VcpuLayout.words.RESET_INDEX, 5],
];
for (const [defined, literal] of WALK_LITERALS) {
  assert(defined === literal, `the fast reset walk uses ${literal} where its definition is now ${defined}`);
}

/** What the fast walk needs of a ring (DirtyRing's fields). */
export interface WalkedRing {
  readonly i32: Int32Array;
  readonly ctl: Int32Array;
  readonly mask: number;
}

/**
 * Walk from reset_index while entries carry RESET (see DirtyRing.resetWalk for the orderings),
 * at most INT_MAX - alreadyCleared entries, and finish the batch. Returns the entries consumed.
 */
export function fastResetWalk(ring: WalkedRing, batch: ResetBatch, sink: ResetBatchSink, alreadyCleared: number): number {
  const i32 = ring.i32;
  const mask = ring.mask;
  let resetIndex = Atomics.load(ring.ctl, 5) >>> 0;
  let count = 0;
  // Entries left before the INT_MAX budget over all rings is spent.
  const budget = 0x7fffffff - alreadyCleared;
  batch.open = false;
  try {
    while (count < budget) {
      const e = (resetIndex & mask) << 2;
      // Acquire: only entries userspace has released with RESET are ours to consume.
      const flags = Atomics.load(i32, e);
      if ((flags & 2) === 0) break;
      // The payload again from the shared entry: userspace may have rewritten it.
      const slot = i32[e + 1]! >>> 0;
      const offLo = i32[e + 2]! >>> 0;
      const offHi = i32[e + 3]! >>> 0;
      // Plain, as the kernel's WRITE_ONCE: released by the reset_index exchange below.
      i32[e] = 0;
      resetIndex = (resetIndex + 1) >>> 0;
      count++;
      // ResetBatch.add's forward merge (0 <= offset - batch offset < 64, same slot), on the
      // batch's fields; every other case (a new batch, a backward merge, a u64 borrow) is add's.
      if (batch.open && slot === batch.slot && offHi === batch.offHi && offLo >= batch.offLo) {
        const d = offLo - batch.offLo;
        if (d < 32) {
          batch.maskLo = (batch.maskLo | (1 << d)) >>> 0;
          continue;
        }
        if (d < 64) {
          batch.maskHi = (batch.maskHi | (1 << (d - 32))) >>> 0;
          continue;
        }
      }
      batch.add(slot, offLo, offHi, sink);
    }
  } finally {
    // As in DirtyRing.resetWalk: published even if a sink throws, never left behind zeroed flags.
    Atomics.exchange(ring.ctl, 5, resetIndex | 0);
  }
  batch.finish(sink);
  return count;
}
