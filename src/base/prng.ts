/**
 * The seeded pseudo-random generator every layer uses (workloads, scenarios, choosers,
 * perturbation): mulberry32, small and fast, so that a seed reproduces a run.
 */

/** mulberry32's Weyl increment: the state steps by this odd constant, so it cycles through 2^32 values. */
const MULBERRY32_INCREMENT = 0x6d2b79f5;
/** 2^32 / golden ratio: spreads consecutive stream numbers far apart before mixing. */
const GOLDEN_GAMMA = 0x9e3779b9;
/** MurmurHash3's fmix32 multipliers: together with the shifts, every input bit affects every output bit. */
const FMIX32_C1 = 0x85ebca6b;
const FMIX32_C2 = 0xc2b2ae35;
const U32_RANGE = 2 ** 32;

/** A small, fast, seedable PRNG (mulberry32); one state word, no allocation. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  nextU32(): number {
    let t = (this.state = (this.state + MULBERRY32_INCREMENT) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n), n ≤ 2^32. */
  below(n: number): number {
    return Math.floor((this.nextU32() / U32_RANGE) * n);
  }

  /** One of `choices`, each [value, weight], with probability weight / total (not a hot path). */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((s, [, w]) => s + w, 0);
    let r = this.below(total);
    for (const [v, w] of choices) {
      if (r < w) return v;
      r -= w;
    }
    return choices[choices.length - 1]![0];
  }
}

/** Derive a per-stream seed from a run seed and a stream number (splitmix-style mixing). */
export function deriveSeed(seed: number, stream: number): number {
  let z = (seed + Math.imul(stream + 1, GOLDEN_GAMMA)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), FMIX32_C1) >>> 0;
  z = Math.imul(z ^ (z >>> 13), FMIX32_C2) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
