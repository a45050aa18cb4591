/**
 * Scheduling strategies on a model: participants that each need a fixed number of steps,
 * driven the way the engine drives a chooser (ascending enabled ids, the last mover).
 */
import { describe, expect, it } from 'vitest';
import { drive } from '../../../helpers/chooser-model.js';
import { PctChooser, RandomChooser, ReplayChooser, ReplayDivergence, nonPreemptive, readFromChoice } from '../../../../src/stress/controlled/choosers.js';
import { DfsExplorer } from '../../../../src/stress/controlled/dfs.js';

function preemptions(choices: readonly number[], steps: readonly number[]): number {
  const left = [...steps];
  let n = 0;
  for (let i = 0; i < choices.length; i++) {
    const prev = choices[i - 1];
    if (prev !== undefined && prev !== choices[i] && left[prev]! > 0) n++;
    left[choices[i]!]!--;
  }
  return n;
}

describe('random and pct', () => {
  it('are determined by their seed', () => {
    expect(drive(new RandomChooser(7), [5, 5, 5])).toEqual(drive(new RandomChooser(7), [5, 5, 5]));
    expect(drive(new RandomChooser(7), [5, 5, 5])).not.toEqual(drive(new RandomChooser(8), [5, 5, 5]));
    expect(drive(new PctChooser(7, 3, 15, 3), [5, 5, 5])).toEqual(drive(new PctChooser(7, 3, 15, 3), [5, 5, 5]));
  });

  it('pct with depth 1 never preempts; depth d preempts at most d − 1 times', () => {
    for (let seed = 0; seed < 50; seed++) {
      expect(preemptions(drive(new PctChooser(seed, 3, 30, 1), [10, 10, 10]), [10, 10, 10])).toBe(0);
      expect(preemptions(drive(new PctChooser(seed, 3, 30, 3), [10, 10, 10]), [10, 10, 10])).toBeLessThanOrEqual(2);
    }
  });
});

describe('replay', () => {
  it('strict replay follows the choices, then preempts nobody', () => {
    const recorded = drive(new RandomChooser(3), [4, 4]);
    expect(drive(new ReplayChooser(recorded, true), [4, 4])).toEqual(recorded);
    expect(drive(new ReplayChooser(recorded.slice(0, 3), true), [4, 4]).slice(0, 3)).toEqual(recorded.slice(0, 3));
  });

  it('strict replay of an impossible choice is a divergence; lenient replay skips it', () => {
    expect(() => new ReplayChooser([1], true).choose(0, [0], -1)).toThrow(ReplayDivergence);
    const lenient = new ReplayChooser([1, 0], false);
    expect(lenient.choose(0, [0], -1)).toBe(0);
    expect(lenient.skipped).toBe(1);
    expect(nonPreemptive([0, 2], 2)).toBe(2);
    expect(nonPreemptive([0, 2], 1)).toBe(0);
  });
});

describe('dfs', () => {
  /** Every schedule dfs enumerates, as strings. */
  function explore(steps: readonly number[], bound: number): string[] {
    const dfs = new DfsExplorer(bound);
    const seen: string[] = [];
    do seen.push(drive(dfs.nextRun(), steps).join(''));
    while (dfs.advance());
    expect(dfs.exhausted).toBe(true);
    return seen;
  }

  it('enumerates every interleaving exactly once when the bound does not bind', () => {
    const all = explore([2, 2], 10);
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(6); // C(4, 2)
  });

  it('with a preemption bound, exactly the schedules within it', () => {
    for (const bound of [0, 1, 2]) {
      const all = explore([3, 2, 2], bound);
      expect(new Set(all).size).toBe(all.length);
      for (const s of all) expect(preemptions([...s].map(Number), [3, 2, 2])).toBeLessThanOrEqual(bound);
    }
    // Bound 0: start with anyone, then run each to completion in some order.
    expect(explore([3, 2, 2], 0).length).toBe(6);
    expect(explore([3, 2, 2], 1).length).toBeGreaterThan(6);
  });
});

describe('read-from decisions', () => {
  it('random reads an older store at about the stale rate, never past the candidates', () => {
    const never = new RandomChooser(1, 0);
    const always = new RandomChooser(1, 1);
    const some = new RandomChooser(1, 0.25);
    let stale = 0;
    for (let i = 0; i < 1000; i++) {
      expect(never.chooseReadFrom(i, 3)).toBe(0);
      const a = always.chooseReadFrom(i, 3);
      expect(a === 1 || a === 2).toBe(true);
      if (some.chooseReadFrom(i, 2) > 0) stale++;
    }
    expect(stale).toBeGreaterThan(150);
    expect(stale).toBeLessThan(350);
  });

  it('pct reads an older store at most `staleDepth` times per run', () => {
    for (let seed = 0; seed < 20; seed++) {
      const pct = new PctChooser(seed, 2, 50, 2, 1);
      let stale = 0;
      for (let step = 0; step < 60; step++) if (pct.chooseReadFrom(step, 2) > 0) stale++;
      expect(stale).toBeLessThanOrEqual(1);
    }
  });

  it('replay follows recorded read-from decisions (−1 − i), strictly or leniently', () => {
    const strict = new ReplayChooser([0, readFromChoice(1), 1], true);
    expect(strict.choose(0, [0, 1], -1)).toBe(0);
    expect(strict.chooseReadFrom(1, 2, 7, 0)).toBe(1);
    expect(strict.choose(2, [0, 1], 0)).toBe(1);
    expect(strict.chooseReadFrom(3, 2, 7, 1)).toBe(0); // past the end: the newest store
    expect(() => new ReplayChooser([readFromChoice(0)], true).choose(0, [0], -1)).toThrow(ReplayDivergence);
    expect(() => new ReplayChooser([0], true).chooseReadFrom(0, 2, 7, 0)).toThrow(ReplayDivergence);
    expect(() => new ReplayChooser([readFromChoice(3)], true).chooseReadFrom(0, 2, 7, 0)).toThrow(ReplayDivergence);
    const lenient = new ReplayChooser([readFromChoice(0), 1, readFromChoice(5)], false);
    expect(lenient.choose(0, [1], -1)).toBe(1); // the recorded read-from is skipped
    expect(lenient.chooseReadFrom(1, 2, 7, 1)).toBe(0); // ~5 is past the candidates: the newest
    expect(lenient.skipped).toBe(2);
  });

  it('dfs branches on which store a load reads, within the stale bound', () => {
    // One participant, two moves, each preceded by a load with two candidate stores.
    const explore = (staleBound: number): string[] => {
      const dfs = new DfsExplorer(0, staleBound);
      const seen: string[] = [];
      do {
        const c = dfs.nextRun();
        const a = c.chooseReadFrom(0, 2, 0, 0);
        c.choose(1, [0], -1);
        const b = c.chooseReadFrom(2, 2, 0, 0);
        seen.push(`${a}${b}`);
      } while (dfs.advance());
      return seen;
    };
    expect(explore(0)).toEqual(['00']);
    expect(explore(1).sort()).toEqual(['00', '01', '10']);
    expect(explore(2).sort()).toEqual(['00', '01', '10', '11']);
  });
});
