/**
 * Scheduling strategies as campaigns run them, without workers: what each plans for a run, how
 * it reruns one, and how dfs moves through its tree on the results it is told.
 */
import { describe, expect, it } from 'vitest';
import type { Chooser } from '../../../../src/stress/controlled/choosers.js';
import type { ControlledRunResult } from '../../../../src/stress/controlled/engine.js';
import { drive } from '../../../helpers/chooser-model.js';
import { STRATEGIES, createStrategy, scenarioSource, shardRefusal } from '../../../../src/stress/controlled/strategies.js';

const OPTIONS = { pctDepth: 3, preemptionBound: 1, staleRate: 0.25, staleDepth: 1, staleBound: 1 };
const scenarios = scenarioSource({ log: 'ring', vcpus: 2 });

/** Two participants with two moves each. */
function play(chooser: Chooser): number[] {
  return drive(chooser, [2, 2]);
}

/** The part of a run's result a strategy reads. */
function result(choices: number[], abort: ControlledRunResult['abort'] = null): ControlledRunResult {
  return { choices, abort } as ControlledRunResult;
}

describe('random and pct', () => {
  it.each(['random', 'pct'] as const)('%s: each run its own seed and scenario; a rerun makes the same choices', (name) => {
    const strategy = createStrategy(name, OPTIONS, 100, scenarios);
    const a = strategy.startRun(100)!;
    const b = strategy.startRun(101)!;
    expect(a.seed).toBe(100);
    expect(b.seed).toBe(101);
    expect(a.scenario).toEqual(scenarios(100));
    expect(a.fileTag).toBe('');
    const first = play(a.chooser);
    expect(play(a.again(result(first)))).toEqual(first);
    expect(strategy.exploration()).toBeNull();
  });

  it('the scenario draws do not depend on the strategy', () => {
    expect(createStrategy('pct', OPTIONS, 1, scenarios).startRun(7)!.scenario).toEqual(createStrategy('random', OPTIONS, 1, scenarios).startRun(7)!.scenario);
  });
});

describe('dfs', () => {
  it('runs one micro scenario from the campaign seed, one schedule per run, until the tree is exhausted', () => {
    const strategy = createStrategy('dfs', OPTIONS, 5, scenarios);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const run = strategy.startRun(5 + i);
      if (run === null) break;
      expect(run.seed).toBe(5);
      expect(run.scenario).toEqual(scenarios(5, 'micro'));
      expect(run.fileTag).toBe(`-schedule${i + 1}`);
      const choices = play(run.chooser);
      expect(play(run.again(result(choices)))).toEqual(choices);
      seen.add(choices.join(''));
      run.end(result(choices));
    }
    expect(strategy.startRun(0)).toBeNull();
    expect(strategy.exploration()).toMatchObject({ schedules: seen.size, exhausted: true });
    expect(seen.size).toBeGreaterThan(1);
  });

  it('a run the harness lost is retried under the same schedule number, then given up', () => {
    const strategy = createStrategy('dfs', OPTIONS, 5, scenarios);
    const tags: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = strategy.startRun(5)!;
      tags.push(run.fileTag);
      run.end(result([], 'worker-lost'));
    }
    expect(tags).toEqual(['-schedule1', '-schedule1-retry1', '-schedule1-retry2']);
    // Given up at position 0: nothing of the tree is left, and it is reported incomplete.
    expect(strategy.startRun(5)).toBeNull();
    expect(strategy.exploration()).toMatchObject({ schedules: 1, exhausted: false });
  });
});

describe('sharding', () => {
  it('only dfs refuses it: every shard would explore the same tree', () => {
    expect(STRATEGIES.filter((s) => shardRefusal(s) !== null)).toEqual(['dfs']);
  });
});
