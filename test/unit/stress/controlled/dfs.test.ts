import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/base/config-error.js';
import { StressHarness } from '../../../../src/stress/campaign.js';
import { campaignSpec } from '../../../../src/stress/campaign-spec.js';
import type { Chooser } from '../../../../src/stress/controlled/choosers.js';
import { DfsExplorer } from '../../../../src/stress/controlled/dfs.js';
import { mutantProfile } from '../../../../src/stress/mutant-catalog.js';
import { drive } from '../../../helpers/chooser-model.js';

/** Two participants with two moves each (at most `maxMoves` of them); returns the schedule the chooser made. */
function play(chooser: Chooser, maxMoves = Infinity): number[] {
  return drive(chooser, [2, 2], maxMoves);
}

function explore(onRun: (dfs: DfsExplorer, run: number) => boolean): { dfs: DfsExplorer; schedules: string[] } {
  const dfs = new DfsExplorer(1);
  const schedules: string[] = [];
  for (let run = 0; !dfs.exhausted && run < 100; run++) {
    if (onRun(dfs, run)) continue;
    schedules.push(play(dfs.nextRun()).join(''));
    dfs.advance();
  }
  return { dfs, schedules };
}

describe('dfs exploration', () => {
  it('enumerates the schedules within the preemption bound once each', () => {
    const { dfs, schedules } = explore(() => false);
    expect(new Set(schedules).size).toBe(schedules.length);
    expect(schedules).toContain('0011');
    expect(schedules).toContain('0110');
    expect(schedules).not.toContain('0101'); // three preemptions
    expect(dfs.complete).toBe(true);
    expect(dfs.schedules).toBe(schedules.length);
  });

  it('a run the harness lost before the first choice is retried, not taken as the whole tree', () => {
    const clean = explore(() => false).schedules;
    const { dfs, schedules } = explore((d, run) => {
      if (run !== 0) return false;
      play(d.nextRun(), 0); // lost before its first choice
      expect(d.harnessFailed(2)).toBe(true);
      return true;
    });
    expect(schedules).toEqual(clean);
    expect(dfs.complete).toBe(true);
    expect(dfs.schedules).toBe(clean.length);
  });

  it('a schedule the harness keeps losing is given up, and the tree reported incomplete', () => {
    const dfs = new DfsExplorer(1);
    for (let i = 0; i < 3; i++) {
      play(dfs.nextRun(), 0);
      expect(dfs.harnessFailed(2)).toBe(i < 2);
    }
    expect(dfs.exhausted).toBe(true);
    expect(dfs.incomplete).toBe(true);
    expect(dfs.complete).toBe(false);
  });
});

describe('campaign specs the library refuses, as the CLI does', () => {
  const never = (): never => {
    throw new Error('no worker may start for a refused spec');
  };
  const harness = new StressHarness({ spawnVcpu: never, spawnControlled: never });

  it('dfs with a shard: every shard would run the same schedules', async () => {
    const spec = campaignSpec('controlled', { strategy: 'dfs', shard: { index: 1, count: 2 } });
    await expect(harness.runCampaign(spec)).rejects.toThrow(ConfigError);
  });

  it('a --log the mutant is not exposed with', async () => {
    const spec = campaignSpec('controlled', { mutant: mutantProfile('dirty-before-writable')!, log: 'bitmap' });
    await expect(harness.runCampaign(spec)).rejects.toThrow(/only exposed with --log ring/);
  });
});
