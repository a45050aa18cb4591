/**
 * Shared pieces of the property and fuzz tests: fixed seeds (DIRTYRING_SEED overrides; fast-check
 * prints the seed and the shrunk counterexample of any failure), modest run counts so that the
 * suite stays fast, and generators of hostile argument values.
 */
import fc from 'fast-check';
import { testSeed } from './watchdog.js';

/**
 * fc.assert parameters: a fixed seed per property, reproducible with DIRTYRING_SEED; a longer
 * exploration multiplies every run count by DIRTYRING_FUZZ_SCALE (e.g. 50).
 */
export function fuzzParams(fallbackSeed: number, numRuns = 150): fc.Parameters<unknown> {
  const scale = Number(process.env['DIRTYRING_FUZZ_SCALE'] ?? 1);
  return { seed: testSeed(fallbackSeed), numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))) };
}

/** Values no ABI field holds, and values that look almost right. */
const oddValues = fc.constantFrom<unknown>(
  undefined, null, NaN, Infinity, -Infinity, -0, '', 'x', '0', '64', true, false, [], {}, -1, 0.5, 1.5,
  2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 64, -(2 ** 31), 0n, 1n, -1n, 2n ** 64n, Symbol.iterator,
);

/** Anything a JavaScript caller could pass. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  oddValues,
  fc.integer(),
  fc.nat(0xffffffff),
  fc.double(),
  fc.bigInt(),
  fc.string({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.uint32Array({ maxLength: 16 }),
  fc.int32Array({ maxLength: 16 }),
  fc.float64Array({ maxLength: 4 }),
  fc.anything({ maxDepth: 1 }),
);

/** A value for an argument with a few meaningful integers (`near`), or anything. */
export function argLike(...near: number[]): fc.Arbitrary<unknown> {
  return near.length === 0 ? anyValue : fc.oneof(fc.constantFrom<unknown>(...near), anyValue);
}
