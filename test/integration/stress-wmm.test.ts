/**
 * Controlled runs under a weak memory model, with real participant workers: the 2022 reset race
 * of the pre-2022 ring on arm64 found, explained, shrunk and replayed; the ACQ_REL protocol and
 * the x86 profile clean; the per-step invariant reporting the step a page went unlogged.
 * Seeds are fixed (DIRTYRING_SEED overrides) and printed on failure.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/base/config-error.js';
import { Prng } from '../../src/base/prng.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { type CampaignSpec, campaignSpec } from '../../src/stress/campaign-spec.js';
import { RandomChooser, isReadFromChoice } from '../../src/stress/controlled/choosers.js';
import { runControlled } from '../../src/stress/controlled/engine.js';
import { formatExplanation } from '../../src/stress/controlled/explain.js';
import { generateScenario } from '../../src/stress/controlled/scenario.js';
import { ControlStep } from '../../src/stress/controlled/control-steps.js';
import { formatTrace, traceHash } from '../../src/stress/controlled/trace.js';
import { Step } from '../../src/kernel/step-hook.js';
import { mutantProfile } from '../../src/stress/mutant-catalog.js';
import { replayTraceFile } from '../../src/stress/replay.js';
import { readTraceFile } from '../../src/stress/schedule-file.js';
import { failingRuns } from '../helpers/stress.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
const traceDir = mkdtempSync(join(tmpdir(), 'dirtyring-wmm-'));
afterAll(async () => {
  await harness.close();
  rmSync(traceDir, { recursive: true, force: true });
});

const CAMPAIGN_MS = 180_000;
const RUNS_MS = 60_000;
/** The 2022 race is found within this many runs (README: measured worst case, doubled). */
const RACE_BOUND = 1000;

function spec(over: Partial<CampaignSpec>): CampaignSpec {
  return campaignSpec('controlled', { runs: 100, traceDir, ...over });
}

describe('the pre-2022 ring on arm64, with a reset thread (QEMU\'s 2022 scenario)', () => {
  it('loses a page: found, classified, explained, shrunk to a short schedule, and replayed exactly', async () => {
    const seed = testSeed(1);
    const r = await withWatchdog(seed, CAMPAIGN_MS, '2022 scenario campaign', () =>
      harness.runCampaign(spec({ seed, runs: RACE_BOUND, memoryModel: 'arm64', ringCap: 'ring', resetter: 'thread', stopAtFirstForbidden: true, shrink: true })),
    );
    expect(r.caught, `seed ${seed}: not caught in ${r.runs} runs`).toBe(true);
    const first = r.records.find((x) => x.cls === 'forbidden')!;
    expect(['lost-page', 'copy-mismatch'], `seed ${seed}: ${first.outcome}`).toContain(first.outcome);
    expect(first.outcomes, `seed ${seed}`).toContain('unlogged-write');
    expect(first.deterministic, `seed ${seed}`).toBe(true);
    // The explanation names the missing acquire of the pre-2022 walk (or the release it pairs with).
    const e = first.explanation!;
    expect(e.rows.some((row) => row.mark === 'stale'), `seed ${seed}: ${formatExplanation(e).join('\n')}`).toBe(true);
    expect(e.notes.join('\n'), `seed ${seed}`).toMatch(/missing (acquire|release)/);
    expect(e.rows[e.rows.length - 1]!.mark).toBe('violation');
    // Shrunk: few decisions, a stale read among them; the file replays to the same trace.
    expect(first.shrunk, `seed ${seed}`).not.toBeNull();
    expect(first.shrunk!.to.decisions).toBeLessThan(first.shrunk!.from.decisions);
    expect(first.shrunk!.to.staleReads).toBeGreaterThanOrEqual(1);
    const file = readTraceFile(first.shrunk!.traceFile!);
    expect(file.mode === 'controlled' && file.memoryModel).toBe('arm64');
    const replay = await withWatchdog(seed, RUNS_MS, 'replay of the shrunk schedule', () => replayTraceFile(first.shrunk!.traceFile!, harness));
    expect(replay.identical, `seed ${seed}`).toBe(true);
    expect(replay.deterministic, `seed ${seed}`).toBe(true);
    expect(replay.cls).toBe('forbidden');
    // The same schedule means nothing under another model: refused.
    await expect(replayTraceFile(first.shrunk!.traceFile!, harness, 'x86')).rejects.toThrow(ConfigError);
  }, timeoutAbove(CAMPAIGN_MS, RUNS_MS));

  it('ACQ_REL on both sides fixes it: no forbidden run', async () => {
    const seed = testSeed(2);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'ACQ_REL campaign', () =>
      harness.runCampaign(spec({ seed, runs: 300, memoryModel: 'arm64', ringCap: 'ring-acqrel', resetter: 'thread' })),
    );
    expect(failingRuns(r).slice(0, 3), `seed ${seed}`).toEqual([]);
    expect(r.runs).toBe(300);
  }, timeoutAbove(CAMPAIGN_MS));

  it('x86 (TSO) makes the pre-2022 protocol correct, even with a pre-2022 harvester', async () => {
    const seed = testSeed(3);
    const fault = mutantProfile('harvest-relaxed-reset')!;
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'x86 pre-2022 campaign', () =>
      harness.runCampaign(
        spec({ seed, runs: 200, memoryModel: 'x86', ringCap: 'ring', resetter: 'thread', mutant: { ...fault, memoryModel: undefined, controlled: { ...fault.controlled, ringCap: 'ring' } } }),
      ),
    );
    expect(failingRuns(r).slice(0, 3), `seed ${seed}`).toEqual([]);
  }, timeoutAbove(CAMPAIGN_MS));
});

describe('weak-model campaigns of every shape', () => {
  it('arm64 (ACQ_REL rings, every log mode and harvester): no forbidden outcome, and loads did read older stores', async () => {
    const seed = testSeed(4);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'arm64 campaign', () => harness.runCampaign(spec({ seed, runs: 400, memoryModel: 'arm64', checkEveryRun: true })));
    expect(failingRuns(r).slice(0, 3), `seed ${seed}`).toEqual([]);
    expect(r.records.every((x) => x.deterministic === true)).toBe(true);
  }, timeoutAbove(CAMPAIGN_MS));

  it('dfs explores which store each load reads, within the stale bound', async () => {
    const seed = testSeed(5);
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'dfs arm64', () =>
      harness.runCampaign(spec({ seed, runs: 3000, strategy: 'dfs', preemptionBound: 1, staleBound: 1, memoryModel: 'arm64', log: 'ring' })),
    );
    expect(r.dfs?.exhausted, `seed ${seed}: ${JSON.stringify(r.dfs)}`).toBe(true);
    expect(new Set(r.records.map((x) => x.traceHash)).size).toBe(r.runs);
    expect(failingRuns(r).slice(0, 3), `seed ${seed}`).toEqual([]);
  }, timeoutAbove(CAMPAIGN_MS));

  it('a run under a weak model records read-from decisions and repeats exactly from them', async () => {
    const seed = testSeed(6);
    await withWatchdog(seed, RUNS_MS, 'two identical weak runs', async () => {
      let decided = 0;
      // A run makes read-from decisions only where a load has a choice: most runs of a few seeds do.
      for (let s = seed; s < seed + 8; s++) {
        const scenario = generateScenario(new Prng(s), { shape: 'micro', log: 'ring', harvester: 'standard', resetter: 'thread' });
        const run = () => runControlled({ scenario, mutants: 0, seed: s, chooser: new RandomChooser(s, 0.5), memoryModel: 'arm64' }, harness.participants);
        const a = await run();
        const b = await run();
        expect(a.errors, `seed ${s}`).toEqual([]);
        expect(b.traceHash, `seed ${s}`).toBe(a.traceHash);
        expect(b.staleReads, `seed ${s}`).toBe(a.staleReads);
        if (a.choices.some(isReadFromChoice)) decided++;
      }
      expect(decided, `seeds ${seed}..${seed + 7}`).toBeGreaterThan(0);
    });
  }, timeoutAbove(RUNS_MS));
});

describe('the per-step invariant', () => {
  it('reports the step a page went unlogged before the end-of-iteration oracle, with its explanation (sc, dirty-before-writable)', async () => {
    const seed = testSeed(7);
    const profile = mutantProfile('dirty-before-writable')!;
    const r = await withWatchdog(seed, CAMPAIGN_MS, 'dirty-before-writable', () =>
      harness.runCampaign(spec({ seed, runs: profile.bound.controlled, mutant: profile, stopAtFirstForbidden: true })),
    );
    const first = r.records.find((x) => x.cls === 'forbidden')!;
    expect(first.outcomes, `seed ${seed}`).toContain('unlogged-write');
    const e = first.explanation!;
    expect(e.rows.map((row) => row.text).join('\n'), `seed ${seed}`).toMatch(/made writable/);
    expect(first.detail, `seed ${seed}`).toMatch(/the invariant broke at step \d+/);
  }, timeoutAbove(CAMPAIGN_MS));

  it('a schedule file recorded under one model cannot be replayed under another', async () => {
    const file = join(traceDir, 'arm64.json');
    const scenario = generateScenario(new Prng(1), { shape: 'micro', log: 'ring', vcpus: 1 });
    writeFileSync(
      file,
      // A hand-made recording, consistent with itself: one trace line per choice, hashing to traceHash.
      JSON.stringify({ format: 'dirtyring-schedule/1', mode: 'controlled', seed: 1, strategy: 'random', mutants: [], memoryModel: 'arm64', wmmHistory: 8, scenario, choices: [0, -2], steps: 2, outcome: 'clean', outcomes: [], traceHash: traceHash([[0, ControlStep.START, 0, 0], [0, Step.READ_FROM, 0, 1]]), schedule: '', trace: formatTrace([[0, ControlStep.START, 0, 0], [0, Step.READ_FROM, 0, 1]]) }),
    );
    expect(readTraceFile(file).mode).toBe('controlled');
    await expect(replayTraceFile(file, harness, 'sc')).rejects.toThrow(/recorded under --memory-model arm64/);
    // Read-from decisions only exist under a weak model.
    const sc = join(traceDir, 'sc.json');
    writeFileSync(sc, JSON.stringify({ ...JSON.parse(JSON.stringify(readTraceFile(file))), memoryModel: 'sc' }));
    expect(() => readTraceFile(sc)).toThrow(/choices …: EINVAL, must be a list of participants 0\.\.\d+$/);
  });
});
