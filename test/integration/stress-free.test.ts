/**
 * The free-running stress mode: real vCPU worker threads with random delays at the protocol's
 * step points, harvest jitter, forced harvests and kicks. Timing is the machine's, so these
 * tests use bounded campaigns and generous watchdogs; seeds are fixed and printed on failure.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runDirtyLog } from '../../src/harness/run.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { type CampaignSpec, campaignSpec } from '../../src/stress/campaign-spec.js';
import { generateFreeScenario } from '../../src/stress/free/free-scenario.js';
import { MUTANT_PROFILES, mutantProfile } from '../../src/stress/mutant-catalog.js';
import { failingRuns } from '../helpers/stress.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
afterAll(() => harness.close());

const CAMPAIGN_MS = 180_000;
const RUN_MS = 60_000;
const MUTANT_MS = 240_000;

function spec(over: Partial<CampaignSpec>): CampaignSpec {
  return campaignSpec('free', { runs: 10, ...over });
}

describe('free-running campaigns', () => {
  it('the unmutated emulator: no forbidden outcome in a campaign across modes, sizes and workloads', async () => {
    const seed = testSeed(9100);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'free campaign', () => harness.runCampaign(spec({ seed, runs: 24 })));
    expect(failingRuns(r), `seed ${seed}`).toEqual([]);
    expect(r.runs, `seed ${seed}`).toBe(24);
    expect(new Set(r.records.map((x) => x.config.split('/')[0])), `seed ${seed}`).toEqual(new Set(['ring', 'bitmap', 'clear']));
  }, timeoutAbove(CAMPAIGN_MS));

  it('self-reap on: every standard ring run reaps on its vCPU threads, and no page is lost', async () => {
    const seed = testSeed(9200);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'free self-reap campaign', () => harness.runCampaign(spec({ seed, runs: 16, log: 'ring', selfReap: true })));
    expect(failingRuns(r), `seed ${seed}`).toEqual([]);
    // The hostile variant is the rings' only reaper (the hand-off design); every other run self-reaps.
    for (const x of r.records) expect(x.config, `seed ${seed}`).toMatch(x.config.startsWith('ring/hostile-wrap') ? /^ring\/hostile-wrap / : /^ring\/standard\+self-reap /);
    expect(r.records.filter((x) => x.outcomes.includes('ring-full-page')).length, `seed ${seed}: no run filled a ring`).toBeGreaterThan(0);
  }, timeoutAbove(CAMPAIGN_MS));

  it('guests of the sizes asked for: 1 GiB guests, one slot of them with the SIMD bitmap scan, and no page is lost', async () => {
    const seed = testSeed(9300);
    for (const log of ['bitmap', 'clear'] as const) {
      const r = await withWatchdog(seed, CAMPAIGN_MS, `free ${log} campaign of 1 GiB guests`, () => harness.runCampaign(spec({ seed, runs: 2, log, memoryMiB: [1024] })));
      expect(failingRuns(r), `seed ${seed}`).toEqual([]);
      const configs = r.records.map((x) => (x.scenario as { config: { memoryBytes: number; memslots: number } }).config);
      // Up to 63 pages are added to some guests (free-scenario.ts, EDGE_DRAW).
      for (const c of configs) expect(c.memoryBytes >> 20, `seed ${seed}`).toBe(1024);
      // A run with one memslot has a slot of 1 GiB: the size from which bitmaps get the SIMD scan.
      expect(configs.some((c) => c.memslots === 1), `seed ${seed}: no run of one memslot`).toBe(true);
    }
    const sizes = new Set(Array.from({ length: 60 }, (_, i) => (generateFreeScenario(i, { memoryMiB: [64, 1024] }).config.memoryBytes ?? 0) >> 20));
    expect(sizes).toEqual(new Set([64, 1024]));
  }, timeoutAbove(2 * CAMPAIGN_MS));

  it('the design is drawn per ring run of the standard harvester unless the campaign fixes it', () => {
    const ring = Array.from({ length: 200 }, (_, i) => generateFreeScenario(i, { log: 'ring', harvester: 'standard' }));
    const selfReaping = ring.filter((x) => x.config.selfReap === true).length;
    expect(selfReaping).toBeGreaterThan(50);
    expect(selfReaping).toBeLessThan(150);
    expect(generateFreeScenario(1, { log: 'ring', harvester: 'standard', selfReap: false }).config.selfReap).toBe(false);
    expect(generateFreeScenario(1, { harvester: 'hostile-wrap', selfReap: true }).config.selfReap).toBe(false);
    expect(generateFreeScenario(1, { log: 'bitmap', selfReap: true }).config.selfReap).toBe(false);
  });

  it('a scenario is a function of its seed, and perturbs most runs', () => {
    expect(generateFreeScenario(77)).toEqual(generateFreeScenario(77));
    const perturbed = Array.from({ length: 100 }, (_, i) => generateFreeScenario(i)).filter((s) => s.vcpuPerturbation !== null);
    expect(perturbed.length).toBeGreaterThan(60);
    expect(generateFreeScenario(5, { harvester: 'unaligned-clear' }).config.log).toBe('clear');
  });

  it('--path emulated with bitmap logging makes progress (every store logged, still no stall)', async () => {
    const seed = testSeed(3);
    for (const log of ['clear', 'bitmap'] as const) {
      const s = await withWatchdog(seed, RUN_MS, `emulated ${log}`, () =>
        runDirtyLog({ log, emulateAllStores: true, burstPercent: 0, iterations: 2, memoryBytes: 4 << 20, seed }, { spawn: harness.vcpuSpawn }),
      );
      const c = `seed ${seed} (--log ${log}): ${JSON.stringify({ error: s.error, guestWrites: s.guestWrites })}`;
      expect(s.error, c).toBeNull();
      expect(s.ok, c).toBe(true);
      expect(s.guestWrites, c).toBeGreaterThanOrEqual(2 * 256);
    }
  }, timeoutAbove(RUN_MS, RUN_MS));
});

describe('known-bug mutants, free-running', () => {
  // Ordering mutants need a weak memory model: real threads on JS Atomics never reorder, so the
  // CLI reports them n/a in free mode and the controlled campaigns cover them.
  const modelled = MUTANT_PROFILES.filter((p) => p.notModelledIn?.free === undefined);
  it.each(modelled.map((p) => [p.name, p.bound.free] as const))('%s is caught within %i runs', async (name) => {
    const profile = mutantProfile(name)!;
    const seed = testSeed(101);
    const r = await withWatchdog(seed, MUTANT_MS, `free mutant ${name}`, () =>
      harness.runCampaign(spec({ seed, runs: profile.bound.free, mutant: profile, stopAtFirstForbidden: true })),
    );
    expect(r.caught, `seed ${seed}: ${name} not caught in ${r.runs} free runs`).toBe(true);
  }, timeoutAbove(MUTANT_MS));
});
