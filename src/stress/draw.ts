/**
 * The draws scenario generators make, each exactly one `Prng.below` call: a generated scenario
 * is a function of its seed, so a helper here must never change how many draws it takes.
 */
import { assert } from '../base/assert.js';
import type { Prng } from '../base/prng.js';

/** A uniform integer in lo..hi. */
export function between(rng: Prng, lo: number, hi: number): number {
  assert(lo <= hi, 'between: an empty range');
  return lo + rng.below(hi - lo + 1);
}

/** True in `p` percent of the draws. */
export function percent(rng: Prng, p: number): boolean {
  return rng.below(100) < p;
}

/** One of `list`, uniformly. */
export function pick<T>(rng: Prng, list: readonly T[]): T {
  return list[rng.below(list.length)]!;
}
