/**
 * The page's stress campaign (src/stress/page-campaign.ts) in Node: a free campaign fills the
 * shared outcome histogram, each run once; a bad mode, and a weak memory model for free runs,
 * are refused naming the option before any run, the histogram untouched.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/base/config-error.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { HistogramWords, histogramBuffer, readHistogram } from '../../src/stress/outcome-histogram.js';
import { isForbidden } from '../../src/stress/outcome.js';
import { type PageCampaignRequest, runPageCampaign } from '../../src/stress/page-campaign.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';
import type { OutcomeKind } from '../../src/stress/outcome.js';

const platform = { spawnControlled: spawnNodeControlledWorker, spawnVcpu: spawnNodeVcpuWorker };
const CAMPAIGN_MS = 120_000;

function request(over: Partial<PageCampaignRequest>): PageCampaignRequest {
  return { mode: 'free', runs: 3, seed: 1, mutant: '', memoryModel: 'sc', log: null, ...over };
}

describe('page campaigns', () => {
  it('a free campaign counts each run once in the histogram, none forbidden', async () => {
    const seed = testSeed(4200);
    const buffer = histogramBuffer();
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'free page campaign', () => runPageCampaign(request({ seed }), buffer, platform));
    const h = new Int32Array(buffer);
    const counts = readHistogram(h);
    expect(r.mode, `seed ${seed}`).toBe('free');
    expect(r.runs, `seed ${seed}`).toBe(3);
    expect(Atomics.load(h, HistogramWords.RUNS), `seed ${seed}`).toBe(3);
    expect(Object.values(counts).reduce((a, b) => a + b, 0), `seed ${seed}`).toBe(3);
    expect(r.forbidden, `seed ${seed}`).toBe(0);
    expect(Object.keys(counts).filter((k) => isForbidden([k as OutcomeKind])), `seed ${seed}`).toEqual([]);
  }, timeoutAbove(CAMPAIGN_MS));

  it.each([
    [{ mode: 'both' as never }, '--mode'],
    [{ memoryModel: 'arm64' as const }, '--memory-model'],
  ])('refuses %o naming %s, before any run', async (over, option) => {
    const buffer = histogramBuffer();
    const e = await runPageCampaign(request(over), buffer, platform).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain(option);
    expect((e as Error).message).toContain('EINVAL');
    expect(Atomics.load(new Int32Array(buffer), HistogramWords.RUNS)).toBe(0);
  });
});
