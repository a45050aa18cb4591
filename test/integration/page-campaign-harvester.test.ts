/**
 * The page's stress campaign with a user's harvester in the collector's place (Node): the
 * harvester found by the app's URL through this thread's provider (src/stress/harvester-source.ts,
 * as the browser app's campaign worker finds it) or as a module file (as the CLI's), the buggy
 * skips-entry example caught in free runs and the QEMU-style reaper clean; a harvester with a
 * mutant, or a --log other than the harvester's, refused naming the option before any run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/base/config-error.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { appHarvesterId, appHarvesterUrl, provideHarvesters } from '../../src/stress/harvester-source.js';
import { HistogramWords, histogramBuffer } from '../../src/stress/outcome-histogram.js';
import { type PageCampaignRequest, runPageCampaign } from '../../src/stress/page-campaign.js';
import qemuReaper from '../../examples/harvesters/qemu-reaper.js';
import skipsEntry from '../../examples/harvesters/skips-entry.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const platform = { spawnControlled: spawnNodeControlledWorker, spawnVcpu: spawnNodeVcpuWorker };
const CAMPAIGN_MS = 120_000;
const example = (name: string): string => new URL(`../../examples/harvesters/${name}.ts`, import.meta.url).href;

function request(over: Partial<PageCampaignRequest>): PageCampaignRequest {
  return { mode: 'free', runs: 2, seed: 1, mutant: '', memoryModel: 'sc', log: null, ...over };
}

afterEach(() => provideHarvesters(null));

describe('page campaigns with a user harvester', () => {
  it('an app URL names its choice id and keeps the file name a run description shows', () => {
    const url = appHarvesterUrl('wasm-file', 'my reaper.wasm');
    expect(appHarvesterId(url)).toBe('wasm-file');
    expect(url.endsWith('/my%20reaper.wasm')).toBe(true);
    expect(appHarvesterId(example('skips-entry'))).toBeNull();
  });

  it('catches the buggy skips-entry example, found through the provider, in free runs', async () => {
    const seed = testSeed(5);
    const url = appHarvesterUrl('sdk-skips-entry', 'skips-entry.ts');
    provideHarvesters((u) => (u === url ? skipsEntry : null));
    const userHarvester = { url, name: 'skips-entry', log: 'ring' as const, threads: 0 };
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'skips-entry page campaign', () => runPageCampaign(request({ seed, userHarvester }), histogramBuffer(), platform));
    expect(r.harvester, `seed ${seed}`).toEqual({ name: 'skips-entry', log: 'ring', threads: 0 });
    expect(r.forbidden, `seed ${seed}`).toBeGreaterThan(0);
    expect(r.firstForbidden?.config, `seed ${seed}`).toMatch(/^ring\/user:skips-entry\.ts /);
  }, timeoutAbove(CAMPAIGN_MS));

  it('runs the QEMU-style reaper clean, as a module file, in free and controlled runs', async () => {
    const seed = testSeed(8);
    const userHarvester = { url: example('qemu-reaper'), name: qemuReaper.name, log: qemuReaper.log, threads: 0 };
    for (const mode of ['free', 'controlled'] as const) {
      const runs = mode === 'free' ? 2 : 20;
      const r = await withWatchdog(seed, CAMPAIGN_MS, `qemu-reaper ${mode} page campaign`, () => runPageCampaign(request({ mode, runs, seed, userHarvester }), histogramBuffer(), platform));
      expect(r.runs, `${mode}, seed ${seed}`).toBe(runs);
      expect(r.forbidden, `${mode}, seed ${seed}: ${r.firstForbidden?.detail}`).toBe(0);
    }
  }, timeoutAbove(2 * CAMPAIGN_MS));

  it.each([
    [{ mutant: 'harvest-skips-entry' }, '--harvester'],
    [{ log: 'clear' as const }, '--log'],
  ])('refuses a harvester with %o naming %s, before any run', async (over, option) => {
    const buffer = histogramBuffer();
    const userHarvester = { url: example('qemu-reaper'), name: 'qemu-reaper', log: 'ring' as const, threads: 0 };
    const e = await runPageCampaign(request({ ...over, userHarvester }), buffer, platform).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain(option);
    expect((e as Error).message).toContain('EINVAL');
    expect(Atomics.load(new Int32Array(buffer), HistogramWords.RUNS)).toBe(0);
  });
});
