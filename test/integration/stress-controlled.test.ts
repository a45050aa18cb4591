/**
 * The controlled stress mode with real worker threads parked on the token: a 1000-run campaign
 * of the unmutated emulator, every mutant caught within its stated bound, determinism, exact
 * replay of a failing schedule, shrinking, sharding, and bounded exhaustive exploration.
 * Seeds are fixed (DIRTYRING_SEED overrides) and printed on failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Prng, deriveSeed } from '../../src/base/prng.js';
import { Mutant } from '../../src/userspace/known-bugs.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { type CampaignResult, StressHarness } from '../../src/stress/campaign.js';
import { type CampaignSpec, campaignSpec } from '../../src/stress/campaign-spec.js';
import { RandomChooser, ReplayChooser } from '../../src/stress/controlled/choosers.js';
import { classifyControlled } from '../../src/stress/controlled/classify.js';
import { runControlled } from '../../src/stress/controlled/engine.js';
import { generateScenario, rosterOf, validateScenario } from '../../src/stress/controlled/scenario.js';
import { type TraceEntry, parseTraceLine, traceHash } from '../../src/stress/controlled/trace.js';
import { shrinkFailure } from '../../src/stress/controlled/shrink.js';
import { MUTANT_PROFILES, mutantProfile } from '../../src/stress/mutant-catalog.js';
import { isForbidden } from '../../src/stress/outcome.js';
import { replayTraceFile } from '../../src/stress/replay.js';
import { controlledScheduleFile, readTraceFile, writeJsonFile } from '../../src/stress/schedule-file.js';
import { failingRuns } from '../helpers/stress.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
const traceDir = mkdtempSync(join(tmpdir(), 'dirtyring-stress-'));
afterAll(async () => {
  await harness.close();
  rmSync(traceDir, { recursive: true, force: true });
});

/** The first few forbidden or failed runs of a campaign, with what they showed (for failure messages). */
function badRuns(r: CampaignResult): string {
  return JSON.stringify(failingRuns(r).slice(0, 3));
}

/** Watchdogs: the 1000-run campaign, other campaigns and shrinking, and a handful of single runs. */
const BIG_CAMPAIGN_MS = 240_000;
const CAMPAIGN_MS = 120_000;
const RUNS_MS = 60_000;

function spec(over: Partial<CampaignSpec>): CampaignSpec {
  return campaignSpec('controlled', { runs: 100, ...over });
}

describe('the unmutated emulator under the controlled scheduler', () => {
  /** Runs within which a default controlled campaign reaches every edge state (about twice the worst of 13 seeds). */
  const EDGE_REACH_BOUND = 400;

  it('1000 controlled runs (micro-runs, edges, a few sweeps and floods): no forbidden outcome, no error, every edge state reached', async () => {
    const seed = testSeed(6000);
    const r = await withWatchdog(seed, BIG_CAMPAIGN_MS, '1000-run controlled campaign', () => harness.runCampaign(spec({ seed, runs: 1000 })));
    expect(failingRuns(r).slice(0, 3), `seed ${seed}`).toEqual([]);
    expect(r.runs).toBe(1000);
    expect(r.classes.forbidden + r.classes.error).toBe(0);
    // The campaign covers every logging interface and every harvester variant.
    const configs = r.records.map((x) => x.config);
    for (const kind of ['ring/standard', 'bitmap/standard', 'clear/standard', 'clear/unaligned-clear', 'ring/hostile-wrap']) {
      expect(configs.some((c) => c.startsWith(kind)), kind).toBe(true);
    }
    expect(r.table.some((row) => row.outcome === 'hostile-userspace')).toBe(true);
    // ...and reaches every edge state a controlled run can reach (ring ends and laps,
    // coalescing, bitmap word halves and slot ends, CLEAR chunks, memslots, SMM, the TLB).
    // ...and reaches each within the bound the README states for default campaigns.
    expect(r.coverage.unreached, `seed ${seed}`).toEqual([]);
    expect(r.coverage.reached, `seed ${seed}`).toBe(r.coverage.applicable);
    for (const row of r.coverage.rows.filter((x) => x.applicable)) expect(row.firstRun!, `seed ${seed}: ${row.id}`).toBeLessThanOrEqual(EDGE_REACH_BOUND);
  }, timeoutAbove(BIG_CAMPAIGN_MS));

  it('pct campaigns (bug depth 3) find nothing either', async () => {
    const seed = testSeed(6100);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'pct campaign', () => harness.runCampaign(spec({ seed, runs: 150, strategy: 'pct' })));
    expect(r.classes.forbidden + r.classes.error, `seed ${seed}: ${badRuns(r)}`).toBe(0);
  }, timeoutAbove(CAMPAIGN_MS));

  it('dfs exhausts the schedules of a tiny scenario within a preemption bound', async () => {
    const seed = testSeed(3);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'dfs campaign', () =>
      harness.runCampaign(spec({ seed, runs: 5000, strategy: 'dfs', preemptionBound: 1 })),
    );
    expect(r.dfs?.exhausted, `seed ${seed}: ${JSON.stringify(r.dfs)}`).toBe(true);
    expect(r.runs).toBe(r.dfs?.schedules);
    expect(r.runs).toBeGreaterThan(10);
    expect(r.classes.forbidden + r.classes.error, `seed ${seed}: ${badRuns(r)}`).toBe(0);
    // Every explored schedule is a different trace.
    expect(new Set(r.records.map((x) => x.traceHash)).size).toBe(r.runs);
  }, timeoutAbove(CAMPAIGN_MS));

  it('shards split a campaign by seed', async () => {
    const seed = testSeed(6200);
    await withWatchdog(seed, RUNS_MS, 'whole and sharded campaigns', async () => {
      const whole = await harness.runCampaign(spec({ seed, runs: 12 }));
      const a = await harness.runCampaign(spec({ seed, runs: 12, shard: { index: 1, count: 3 } }));
      const b = await harness.runCampaign(spec({ seed, runs: 12, shard: { index: 2, count: 3 } }));
      const c = await harness.runCampaign(spec({ seed, runs: 12, shard: { index: 3, count: 3 } }));
      expect([a.runs, b.runs, c.runs]).toEqual([4, 4, 4]);
      const union = [...a.records, ...b.records, ...c.records].map((x) => [x.seed, x.traceHash]).sort((x, y) => Number(x[0]) - Number(y[0]));
      expect(union).toEqual(whole.records.map((x) => [x.seed, x.traceHash]));
    });
  }, timeoutAbove(RUNS_MS));
});

describe('known-bug mutants, controlled mode', () => {
  // Mutants whose code the controlled scheduler does not model (page write-tracking) are
  // reported n/a by the CLI and covered by the free-mode campaigns instead.
  const modelled = MUTANT_PROFILES.filter((p) => p.notModelledIn?.controlled === undefined);
  it.each(modelled.map((p) => [p.name, p.bound.controlled] as const))('%s is caught within %i runs', async (name) => {
    const profile = mutantProfile(name)!;
    const seed = testSeed(7);
    const r = await withWatchdog(seed, CAMPAIGN_MS, `mutant ${name}`, () =>
      harness.runCampaign(spec({ seed, runs: profile.bound.controlled, mutant: profile, stopAtFirstForbidden: true })),
    );
    expect(r.caught, `seed ${seed}: ${name} not caught in ${r.runs} runs`).toBe(true);
    expect(r.caughtAtRun, `seed ${seed}: ${name}`).toBeLessThanOrEqual(profile.bound.controlled);
    const first = r.records.find((x) => x.cls === 'forbidden')!;
    // The self-check ran the failing seed twice: same trace.
    expect(first.deterministic, `seed ${seed}: ${name}, run seed ${first.seed}`).toBe(true);
  }, timeoutAbove(CAMPAIGN_MS));
});

describe('determinism, replay and shrinking', () => {
  it('a run is a function of its seed: the same scenario and chooser seed give the same trace', async () => {
    const seed = testSeed(42);
    const scenario = generateScenario(new Prng(deriveSeed(seed, 1)), { shape: 'micro', vcpus: 3 });
    const run = () => runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(seed) }, harness.participants);
    await withWatchdog(seed, RUNS_MS, 'three controlled runs', async () => {
      const [a, b] = [await run(), await run()];
      expect(a.steps).toBeGreaterThan(10);
      expect(b.trace).toEqual(a.trace);
      expect(b.traceHash).toBe(a.traceHash);
      // A different chooser seed interleaves differently.
      const c = await runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(seed + 1) }, harness.participants);
      expect(c.traceHash).not.toBe(a.traceHash);
    });
  }, timeoutAbove(RUNS_MS));

  it('a failing schedule, written to its trace file, replays to the identical trace', async () => {
    const seed = testSeed(11);
    const profile = mutantProfile('copy-before-reset')!;
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'copy-before-reset campaign', () =>
      harness.runCampaign(spec({ seed, runs: profile.bound.controlled, mutant: profile, stopAtFirstForbidden: true, traceDir })),
    );
    const first = r.records.find((x) => x.cls === 'forbidden');
    expect(first?.traceFile, `seed ${seed}`).toBeTruthy();
    const file = readTraceFile(first!.traceFile!);
    expect(file.mode, `seed ${seed}`).toBe('controlled');
    await withWatchdog(seed, RUNS_MS, `replaying ${first!.traceFile!}`, async () => {
      const replayed = await replayTraceFile(first!.traceFile!, harness);
      expect(replayed.identical).toBe(true);
      expect(replayed.deterministic).toBe(true);
      expect(replayed.traceHash).toBe(first!.traceHash);
      expect(replayed.outcome).toBe(first!.outcome);
      expect(replayed.cls).toBe('forbidden');
    });
  }, timeoutAbove(CAMPAIGN_MS, RUNS_MS));

  it('a replay compares its trace with the recorded one entry by entry, and names the first step that differs', async () => {
    const seed = testSeed(13);
    const scenario = generateScenario(new Prng(seed), { shape: 'micro', vcpus: 1 });
    await withWatchdog(seed, RUNS_MS, 'a run and two replays of its schedule file', async () => {
      const r = await runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(seed) }, harness.participants);
      const recorded = controlledScheduleFile(r, 'random', 'clean', []);
      const path = join(traceDir, `edited-${seed}.json`);
      writeJsonFile(path, recorded);
      expect((await replayTraceFile(path, harness)).traceDifference, `seed ${seed}`).toBeNull();
      // An edit that keeps the file consistent (the hash recomputed) still cannot pass for the run.
      const k = Math.floor(r.steps / 2);
      const trace = recorded.trace.slice();
      trace[k] = trace[k]!.replace(/(-?\d+)$/, (n) => String(Number(n) + 1));
      const roster = rosterOf(scenario);
      const entries = trace.map((l, i) => parseTraceLine(l, i, roster) as TraceEntry);
      writeJsonFile(path, { ...recorded, trace, traceHash: traceHash(entries) });
      const replayed = await replayTraceFile(path, harness);
      expect(replayed.identical, `seed ${seed}`).toBe(false);
      expect(replayed.traceDifference, `seed ${seed}`).toMatch(new RegExp(`^step ${k}: recorded`));
    });
  }, timeoutAbove(RUNS_MS));

  it('a replay whose recorded choice cannot be taken is reported as diverged, not silently re-scheduled', async () => {
    const seed = testSeed(12);
    const scenario = generateScenario(new Prng(seed), { shape: 'micro', vcpus: 1 });
    await withWatchdog(seed, RUNS_MS, 'a run and its diverging replay', async () => {
      const good = await runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(seed) }, harness.participants);
      // Participant 2 does not exist in a one-vCPU run.
      const r = await runControlled({ scenario, mutants: 0, seed, chooser: new ReplayChooser([...good.choices.slice(0, 3), 2], true) }, harness.participants);
      expect(r.abort).toBe('divergence');
      expect(classifyControlled(r)).toContain('nondeterministic');
    });
  }, timeoutAbove(RUNS_MS));

  it('shrinking produces a smaller case that still fails the same way, and replays strictly', async () => {
    const seed = testSeed(21);
    // A failing run to shrink: no-tlb-flush on a busy scenario.
    const failing = await withWatchdog(seed, RUNS_MS, 'looking for a failing run to shrink', async () => {
      for (let i = 0; i < 200; i++) {
        const scenario = generateScenario(new Prng(deriveSeed(seed + i, 1)), { shape: 'micro', log: 'ring', harvester: 'standard', emulated: false, vcpus: 3 });
        const r = await runControlled({ scenario, mutants: Mutant.NO_TLB_FLUSH, seed: seed + i, chooser: new RandomChooser(seed + i) }, harness.participants);
        if (isForbidden(classifyControlled(r))) return r;
      }
      return null;
    });
    expect(failing, `seed ${seed}: no failing run to shrink`).not.toBeNull();
    const s = await withWatchdog(seed, CAMPAIGN_MS, 'shrinking', () => shrinkFailure(failing!, harness.participants));
    expect(s, `seed ${seed}`).not.toBeNull();
    const { from, to } = s!;
    const sizes = `seed ${seed}: ${JSON.stringify({ from, to })}`;
    expect(to.vcpus, sizes).toBeLessThanOrEqual(from.vcpus);
    expect(to.stores, sizes).toBeLessThanOrEqual(from.stores);
    expect(to.decisions, sizes).toBeLessThan(from.decisions);
    expect(to.vcpus + to.stores + to.decisions, sizes).toBeLessThan(from.vcpus + from.stores + from.decisions);
    const c = `${sizes}, shrunk run seed ${failing!.seed}`;
    expect(classifyControlled(s!.run), c).toContain(s!.outcome);
    const again = await withWatchdog(seed, RUNS_MS, 'strict replay of the shrunk case', () =>
      runControlled(
        { scenario: s!.run.scenario, mutants: Mutant.NO_TLB_FLUSH, seed: failing!.seed, chooser: new ReplayChooser(s!.choices, true) },
        harness.participants,
      ),
    );
    expect(again.traceHash, c).toBe(s!.run.traceHash);
  }, timeoutAbove(RUNS_MS, CAMPAIGN_MS, RUNS_MS));

  it('shrinking a scenario spread over several memslots keeps a scenario a schedule file can hold', async () => {
    const seed = testSeed(22);
    const failing = await withWatchdog(seed, RUNS_MS, 'looking for a failing multi-slot run', async () => {
      for (let i = 0; i < 300; i++) {
        const scenario = generateScenario(new Prng(deriveSeed(seed + i, 1)), { shape: 'edges', log: 'ring', harvester: 'standard' });
        if (scenario.slotPages === undefined || (scenario.smmPages ?? 0) > 0) continue;
        const r = await runControlled({ scenario, mutants: Mutant.NO_TLB_FLUSH, seed: seed + i, chooser: new RandomChooser(seed + i) }, harness.participants);
        if (isForbidden(classifyControlled(r))) return r;
      }
      return null;
    });
    expect(failing, `seed ${seed}: no failing multi-slot run`).not.toBeNull();
    const s = await withWatchdog(seed, CAMPAIGN_MS, 'shrinking', () => shrinkFailure(failing!, harness.participants));
    expect(s, `seed ${seed}`).not.toBeNull();
    const shrunk = s!.run.scenario;
    expect(() => validateScenario(shrunk, 'shrunk'), `seed ${failing!.seed}`).not.toThrow();
  }, timeoutAbove(RUNS_MS, CAMPAIGN_MS));
});
