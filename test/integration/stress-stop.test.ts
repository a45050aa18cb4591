/**
 * Stopping a campaign through the library: once the signal fires no new run starts, the result
 * says it was interrupted and keeps every run made; a shard that would hold no run is refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { campaignSpec } from '../../src/stress/campaign-spec.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
afterAll(() => harness.close());

const CAMPAIGN_MS = 60_000;

describe('a stopped campaign', () => {
  it.each(['controlled', 'free'] as const)('%s: stops after the run that saw the signal, interrupted, every run kept', async (mode) => {
    const seed = testSeed(17);
    const stop = new AbortController();
    const r = await withWatchdog(seed, CAMPAIGN_MS, `${mode} campaign stopped after 5 runs`, () =>
      harness.runCampaign(
        campaignSpec(mode, { runs: 100_000, seed }),
        (_rec, done) => {
          if (done === 5) stop.abort();
        },
        stop.signal,
      ),
    );
    expect(r.interrupted).toBe(true);
    expect(r.abandonedRun).toBeNull();
    expect(r.runs).toBe(5);
    expect(r.records.map((x) => x.index)).toEqual([0, 1, 2, 3, 4]);
    expect(r.table.reduce((n, row) => n + row.runs, 0)).toBe(5);
  }, timeoutAbove(CAMPAIGN_MS));

  it('a campaign that is never stopped is not marked interrupted', async () => {
    const r = await harness.runCampaign(campaignSpec('controlled', { runs: 3, seed: 2 }), undefined, new AbortController().signal);
    expect(r).toMatchObject({ interrupted: false, abandonedRun: null, runs: 3 });
  }, timeoutAbove(CAMPAIGN_MS));

  it('a shard with no run is refused (EINVAL naming --shard), and a time budget still makes one run', async () => {
    await expect(harness.runCampaign(campaignSpec('controlled', { runs: 2, shard: { index: 3, count: 4 } }))).rejects.toThrow('--shard 3/4: EINVAL, shard 3 of 2 runs has no run');
    const r = await harness.runCampaign(campaignSpec('controlled', { runs: null, timeBudgetMs: 0.000_1, seed: 3 }));
    expect(r.runs).toBe(1);
  }, timeoutAbove(CAMPAIGN_MS));
});
