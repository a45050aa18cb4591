/**
 * 11. Free-running stress: runs per second of the default free campaign (`dirtyring stress`,
 * no mutant: every run a generated scenario on real vCPU worker threads, checked by the oracle),
 * against a bare run of the same shape: the same number of threads (pooled, as the campaign's
 * vCPU workers are), started through one control-plane call each, the same iterations, each
 * run for the same interval (or, for a fixed amount of work, until every thread made its
 * writes) with userspace polling every millisecond, then parked and waited for — but the
 * threads only store to a page of their own, and there is no VM, collection, copy or oracle.
 * That is the floor of a run's wall time that its configuration alone imposes; the ratio says
 * how much of a free run is the emulator's work on top.
 *
 * Each repeat makes the same seeds both ways, the order alternating.
 */
import { Worker } from 'node:worker_threads';
import { watchNodeWorker } from '../../src/platform/node-worker.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { waitAsyncWhileEqual } from '../../src/platform/async-wait.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { campaignSpec } from '../../src/stress/campaign-spec.js';
import { generateFreeScenario } from '../../src/stress/free/free-scenario.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { BenchTimeoutError, now } from '../lib/timing.js';
import { benchWorkerUrl } from '../lib/workers.js';
import { BARE_WORDS_PER_VCPU, BareControl, BareState, BareWords, bareControlBytes } from '../workers/free-bare-layout.js';
import type { FreeBareWorkerApi } from '../workers/free-bare.js';

const FIRST_SEED = 7000;
/** Userspace's poll period in a run's iteration (harness/iteration-loop.ts). */
const POLL_MS = 1;
const WAIT_MS = 10_000;
/** A run's iteration sees at least this many guest writes, whatever its interval (harness/iteration-loop.ts). */
const MIN_WRITES_PER_ITERATION = 256;
/** The most vCPUs a generated free scenario has. */
const MAX_VCPUS = 4;

type BareWorker = ReturnType<typeof watchNodeWorker<FreeBareWorkerApi>>;

/** Wait (polling the doorbell every POLL_MS, as a run's userspace does) until `done()`. */
async function waitFor(w: Int32Array, done: () => boolean, what: string): Promise<void> {
  const deadline = now() + WAIT_MS;
  for (;;) {
    const seen = Atomics.load(w, BareWords.DOORBELL);
    if (done()) return;
    if (now() > deadline) throw new BenchTimeoutError(`${what} (control words ${w.join(' ')})`, WAIT_MS);
    await waitAsyncWhileEqual(w, BareWords.DOORBELL, seen, POLL_MS);
  }
}

function setControl(w: Int32Array, control: number): void {
  Atomics.store(w, BareWords.CONTROL, control);
  Atomics.add(w, BareWords.WAKE, 1);
  Atomics.notify(w, BareWords.WAKE);
}

/** One bare run of the scenario of `seed`. */
async function bareRun(workers: readonly BareWorker[], seed: number): Promise<void> {
  const c = generateFreeScenario(seed).config;
  const vcpus = c.vcpus;
  const w = new Int32Array(new SharedArrayBuffer(bareControlBytes(vcpus)));
  const parkedAfter = (i: number): number => Atomics.load(w, BareWords.FIRST_VCPU + i * BARE_WORDS_PER_VCPU + 1);
  const stateOf = (i: number): number => Atomics.load(w, BareWords.FIRST_VCPU + i * BARE_WORDS_PER_VCPU);
  const storesSoFar = (): number => {
    let n = 0;
    for (let i = 0; i < vcpus; i++) n += Atomics.load(w, BareWords.FIRST_VCPU + i * BARE_WORDS_PER_VCPU + 2);
    return n;
  };
  const all = (pred: (i: number) => boolean): boolean => {
    for (let i = 0; i < vcpus; i++) if (!pred(i)) return false;
    return true;
  };
  for (let i = 0; i < vcpus; i++) w[BareWords.FIRST_VCPU + i * BARE_WORDS_PER_VCPU + 1] = -1;
  w[BareWords.WRITES] = c.writesPerIteration ?? 0;
  await Promise.all(workers.slice(0, vcpus).map((b, i) => b.api.start(w.buffer as SharedArrayBuffer, i)));
  await waitFor(w, () => all((i) => parkedAfter(i) === 0), 'bare threads parked at start');
  const iterations = c.iterations ?? 1;
  for (let k = 1; k <= iterations; k++) {
    Atomics.store(w, BareWords.ITERATION, k);
    setControl(w, BareControl.RUN);
    const t0 = now();
    const before = storesSoFar();
    const fixed = (c.writesPerIteration ?? 0) > 0;
    const timeUp = (): boolean => now() - t0 >= (c.intervalMs ?? 0) && storesSoFar() - before >= MIN_WRITES_PER_ITERATION;
    await waitFor(w, () => (fixed ? all((i) => stateOf(i) === BareState.HALTED) : timeUp()), `bare iteration ${k}`);
    setControl(w, BareControl.PAUSE);
    await waitFor(w, () => all((i) => parkedAfter(i) === k && stateOf(i) === BareState.PARKED), `bare threads parked after iteration ${k}`);
  }
  setControl(w, BareControl.EXIT);
  const stores = await Promise.all(workers.slice(0, vcpus).map((b) => b.api.join()));
  if (!(stores.reduce((a, b) => a + b, 0) > 0)) throw new Error(`free-runs: the bare threads of seed ${seed} made no store`);
}

interface Batch {
  readonly runsPerSecond: number;
  readonly errors: number;
}

async function realBatch(harness: StressHarness, first: number, runs: number): Promise<Batch> {
  const t0 = now();
  const r = await harness.runCampaign(campaignSpec('free', { runs, seed: first }));
  if (r.runs !== runs) throw new Error(`free-runs: the campaign made ${r.runs} of ${runs} runs`);
  const errors = r.records.filter((x) => x.cls === 'error').length;
  return { runsPerSecond: runs / ((now() - t0) / 1000), errors };
}

async function bareBatch(workers: readonly BareWorker[], first: number, runs: number): Promise<Batch> {
  const t0 = now();
  for (let seed = first; seed < first + runs; seed++) await bareRun(workers, seed);
  return { runsPerSecond: runs / ((now() - t0) / 1000), errors: 0 };
}

export const freeRunsSuite: Suite = {
  id: 'free-runs',
  title: '11. free-running stress runs vs bare runs of the same shape',
  async run(ctx: SuiteContext): Promise<void> {
    const repeats = ctx.quick ? 3 : 10;
    const runs = ctx.quick ? 6 : 12;
    const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
    const workers: BareWorker[] = [];
    for (let i = 0; i < MAX_VCPUS; i++) workers.push(watchNodeWorker<FreeBareWorkerApi>(new Worker(benchWorkerUrl('free-bare'), { name: `bare${i}` }), `bench bare vCPU ${i}`));
    const real: Batch[] = [];
    const bare: Batch[] = [];
    try {
      await realBatch(harness, FIRST_SEED - 4, 4); // warm-up: the vCPU pool started, code compiled
      await bareBatch(workers, FIRST_SEED - 4, 4);
      for (let r = 0; r < repeats; r++) {
        const first = FIRST_SEED + r * runs;
        if (r % 2 === 0) {
          real.push(await realBatch(harness, first, runs));
          bare.push(await bareBatch(workers, first, runs));
        } else {
          bare.push(await bareBatch(workers, first, runs));
          real.push(await realBatch(harness, first, runs));
        }
        ctx.log(`  repeat ${r + 1}: campaign ${real[r]!.runsPerSecond.toFixed(2)} runs/s, bare ${bare[r]!.runsPerSecond.toFixed(2)} runs/s`);
      }
    } finally {
      await harness.close();
      await Promise.all(workers.map((w) => w.terminate()));
    }
    const errors = real.reduce((a, b) => a + b.errors, 0);
    ctx.reporter.add({
      id: 'free-runs.runs',
      section: '11. free-running stress',
      name: `free stress runs (default campaign, ${runs} runs per batch) vs bare runs of the same shape`,
      unit: 'runs/s',
      better: 'higher',
      samples: real.map((b) => b.runsPerSecond),
      baseline: { name: 'bare run: same threads, iterations, intervals', samples: bare.map((b) => b.runsPerSecond) },
      extra: { runsPerBatch: runs, repeats, errorRuns: errors },
    });
  },
};
