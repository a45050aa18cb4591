/** The generators' draws: each takes exactly one value of the stream, within its range. */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.js';
import { Prng } from '../../../src/base/prng.js';
import { between, percent, pick } from '../../../src/stress/draw.js';

describe('draws', () => {
  it('between covers lo..hi and nothing else', () => {
    const rng = new Prng(1);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(between(rng, 3, 7));
    expect([...seen].sort()).toEqual([3, 4, 5, 6, 7]);
    expect(between(rng, 4, 4)).toBe(4);
    expect(() => between(rng, 5, 4)).toThrow(AssertionError);
  });

  it('each draw is one value of the stream: a seed keeps its scenarios', () => {
    const a = new Prng(9);
    const b = new Prng(9);
    between(a, 0, 10);
    percent(a, 50);
    pick(a, ['x', 'y', 'z']);
    for (let i = 0; i < 3; i++) b.nextU32();
    expect(a.nextU32()).toBe(b.nextU32());
  });

  it('percent 0 never holds, 100 always does', () => {
    const rng = new Prng(2);
    for (let i = 0; i < 100; i++) {
      expect(percent(rng, 0)).toBe(false);
      expect(percent(rng, 100)).toBe(true);
    }
  });
});
