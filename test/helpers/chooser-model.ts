/**
 * A model to drive a scheduling chooser without workers: participants that each need a fixed
 * number of moves, offered to the chooser the way the engine offers them (ascending enabled
 * ids, the last mover, −1 before the first move).
 */
import { expect } from 'vitest';
import type { Chooser } from '../../src/stress/controlled/choosers.js';

/** Run `steps[p]` moves of each participant p under `chooser`, at most `maxMoves`; returns the choices. */
export function drive(chooser: Chooser, steps: readonly number[], maxMoves = Infinity): number[] {
  const left = [...steps];
  const out: number[] = [];
  let last = -1;
  while (out.length < maxMoves) {
    const enabled = left.map((n, p) => (n > 0 ? p : -1)).filter((p) => p >= 0);
    if (enabled.length === 0) break;
    const c = chooser.choose(out.length, enabled, last);
    expect(enabled).toContain(c);
    left[c]!--;
    out.push(c);
    last = c;
  }
  return out;
}
