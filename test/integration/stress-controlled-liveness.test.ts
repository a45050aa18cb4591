/**
 * The controlled engine's own liveness: a participant worker that never takes its run, dies
 * during it, or gets stuck in a wait the model does not know about ends the run within the
 * liveness bounds, classified as a harness error with every participant's state in its
 * detail; the worker is replaced, and the next run on the same pool is clean and identical to
 * the same run on a pool that never saw a bad worker. Two runs started together on one pool
 * take turns instead of granting moves on each other's workers.
 *
 * The bad workers are stand-ins speaking just enough of the worker API (comlink's wire format)
 * to join the pool; the wedged one parks at START through the real ParticipantToken, so that
 * it is granted a move and then never parks again.
 */
import { Worker } from 'node:worker_threads';
import { ParticipantStatus } from '../../src/stress/controlled/token-layout.js';
import { afterAll, describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/base/assert.js';
import { Prng, deriveSeed } from '../../src/base/prng.js';
import { controlledWorkerHandle, spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { type Chooser, RandomChooser } from '../../src/stress/controlled/choosers.js';
import { classifyControlled } from '../../src/stress/controlled/classify.js';
import { ControlStep } from '../../src/stress/controlled/control-steps.js';
import { type ControlledLiveness, type ControlledRunResult, runControlled } from '../../src/stress/controlled/engine.js';
import type { ControlledWorkerHandle } from '../../src/stress/controlled/participant-api.js';
import { ParticipantPool } from '../../src/stress/controlled/pool.js';
import { type ControlledScenario, generateScenario } from '../../src/stress/controlled/scenario.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

type BadMode = 'silent' | 'crash' | 'wedge' | 'late-ring';

// A stand-in worker: answers ping, and on run either does nothing (the run is never taken),
// exits (a crash), parks at START and, once granted, blocks (bounded, for the test's sake)
// without ever parking again — or ('late-ring') runs the real participant, except that its
// START ring (the PARKED_SEQ bump after its PARKED store) is held back: userspace's until it
// is granted its first move, the vCPUs' until userspace's PARKED is published. That is what a
// userspace thread preempted between those two stores does, made certain (bounded: 200 ms).
const BAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', async (msg) => {
  if (!msg || !msg.id || msg.type !== 'APPLY') return;
  const name = msg.path[0];
  if (name === 'ping') {
    parentPort.postMessage({ id: msg.id, type: 'RAW', value: 'pong' });
    return;
  }
  if (name !== 'run') return;
  const config = msg.argumentList[0].value;
  if (workerData.mode === 'late-ring') {
    const { runParticipant } = await import(workerData.mainUrl);
    const { participantBlock } = await import(workerData.tokenUrl);
    const { SchedulerTokenLayout, ParticipantLayout } = await import(workerData.layoutUrl);
    const self = participantBlock(config.token, config.participant).i32;
    const userspace = participantBlock(config.token, 0).i32;
    const { GRANT, STATUS } = ParticipantLayout.words;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const add = Atomics.add;
    let held = false;
    Atomics.add = function (ta, index, value) {
      if (!held && ta.buffer === config.token && ta.byteOffset === 0 && index === SchedulerTokenLayout.words.PARKED_SEQ) {
        held = true;
        if (config.participant === 0) {
          // A fresh token's GRANT starts at 0: ring once granted (or after 200 ms, as a thread
          // that is merely slow would; the scheduler must not wait for the ring either way).
          Atomics.wait(self, GRANT, 0, 200);
        } else {
          // Ring only once userspace has published PARKED (200 ms at most), so that a ring
          // wakes the scheduler to a barrier where every status is settled but one ring is due.
          for (let i = 0; i < 200 && Atomics.load(userspace, STATUS) !== workerData.parked; i++) Atomics.wait(nap, 0, 0, 1);
        }
      }
      return add.call(Atomics, ta, index, value);
    };
    let result;
    try {
      result = runParticipant(config);
    } finally {
      Atomics.add = add;
    }
    parentPort.postMessage({ id: msg.id, type: 'RAW', value: result });
    return;
  }
  if (workerData.mode === 'crash') process.exit(3);
  if (workerData.mode !== 'wedge') return;
  const { ParticipantToken } = await import(workerData.tokenUrl);
  try {
    new ParticipantToken(config.token, config.participant).park(workerData.startStep, config.participant, 0);
  } catch {
    return;
  }
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
});
`;

const dist = (path: string): string => new URL(`../../dist/src/${path}`, import.meta.url).href;
const URLS = {
  tokenUrl: dist('stress/controlled/token.js'),
  mainUrl: dist('stress/controlled/participant-main.js'),
  layoutUrl: dist('stress/controlled/token-layout.js'),
};

function spawnBad(index: number, mode: BadMode): ControlledWorkerHandle {
  const worker = new Worker(BAD_WORKER, {
    eval: true,
    name: `bad-controlled${index}`,
    workerData: { mode, ...URLS, startStep: ControlStep.START, parked: ParticipantStatus.PARKED },
  });
  return controlledWorkerHandle(worker, index);
}

/** A pool whose worker 1 (vCPU 0's) is a bad one the first time it is spawned. */
function poolWithBadWorker(mode: BadMode): ParticipantPool {
  let bad = 1;
  return new ParticipantPool((index) => (index === 1 && bad-- > 0 ? spawnBad(index, mode) : spawnNodeControlledWorker(index)));
}

// Short bounds keep the test quick; they only decide how soon a bad run is given up.
const LIVENESS: ControlledLiveness = { startMs: 1500, stepMs: 1500, resultMs: 1000 };
/** The watchdog of each group of runs (a bad run, a recovery, one seed's run and its reference). */
const RUNS_MS = 30_000;
const pools: ParticipantPool[] = [];
const healthy = new ParticipantPool(spawnNodeControlledWorker);
pools.push(healthy);
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

function scenarioFor(seed: number): ControlledScenario {
  return generateScenario(new Prng(deriveSeed(seed, 1)), { shape: 'micro', log: 'ring', vcpus: 2 });
}

function run(pool: ParticipantPool, scenario: ControlledScenario, seed: number): Promise<ControlledRunResult> {
  return runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(seed), liveness: LIVENESS }, pool);
}

interface BadRun {
  readonly pool: ParticipantPool;
  readonly scenario: ControlledScenario;
  readonly bad: ControlledRunResult;
  /** The seed and the abort detail, for assertion messages. */
  readonly why: string;
}

/** One run of seed's scenario on a pool whose vCPU 0 worker is bad in `mode`. */
async function runWithBadWorker(mode: BadMode, seed: number, what: string): Promise<BadRun> {
  const pool = poolWithBadWorker(mode);
  pools.push(pool);
  const scenario = scenarioFor(seed);
  const bad = await withWatchdog(seed, RUNS_MS, what, () => run(pool, scenario, seed));
  return { pool, scenario, bad, why: `seed ${seed}: ${bad.abortDetail}` };
}

/** The bad run is classified, and the pool gives the next run a fresh worker. */
async function expectRecovery(pool: ParticipantPool, scenario: ControlledScenario, seed: number, bad: ControlledRunResult): Promise<void> {
  expect(classifyControlled(bad), `seed ${seed}`).toContain('harness-error');
  expect(bad.errors.some((e) => e.startsWith('v0: ') && e.endsWith('worker replaced')), `seed ${seed}: ${JSON.stringify(bad.errors)}`).toBe(true);
  await withWatchdog(seed, RUNS_MS, 'the run after the bad one, and its reference', async () => {
    const next = await run(pool, scenario, seed);
    expect(next.abort, `seed ${seed}: ${next.abortDetail}`).toBeNull();
    expect(next.errors).toEqual([]);
    expect(classifyControlled(next)).not.toContain('harness-error');
    // Nothing of the bad run leaked into it: the same run on a pool that never had a bad worker.
    const reference = await run(healthy, scenario, seed);
    expect(next.traceHash).toBe(reference.traceHash);
    expect(next.trace).toEqual(reference.trace);
  });
}

describe('controlled runs stay live when a participant worker fails', () => {
  it('a worker that never takes its run: the run stops at the start bound, the worker is replaced', async () => {
    const seed = testSeed(71);
    const { pool, scenario, bad, why } = await runWithBadWorker('silent', seed, 'silent worker');
    expect(bad.abort, why).toBe('stuck');
    expect(bad.steps, why).toBe(0);
    expect(bad.abortDetail, why).toContain('did not all reach their first step');
    expect(bad.abortDetail, why).toContain('v0 never started');
    await expectRecovery(pool, scenario, seed, bad);
  }, timeoutAbove(RUNS_MS, RUNS_MS));

  it('a worker that dies during its run: worker-lost, with the worker\'s exit in the detail', async () => {
    const seed = testSeed(72);
    const { pool, scenario, bad, why } = await runWithBadWorker('crash', seed, 'crashing worker');
    expect(bad.abort, why).toBe('worker-lost');
    expect(bad.abortDetail, why).toContain("v0's worker died");
    expect(bad.abortDetail, why).toContain('exited with code 3');
    await expectRecovery(pool, scenario, seed, bad);
  }, timeoutAbove(RUNS_MS, RUNS_MS));

  it('a participant granted a move that never parks again: stuck, the others unwind, the worker is replaced', async () => {
    const seed = testSeed(73);
    const { pool, scenario, bad, why } = await runWithBadWorker('wedge', seed, 'wedged participant');
    expect(bad.abort, why).toBe('stuck');
    expect(bad.abortDetail, why).toMatch(/^v0 did not reach its next step within \d+ ms after start/);
    expect(bad.abortDetail, why).toContain('v0 running, granted at start');
    // The healthy participants were parked: they unwound and reported.
    expect(bad.errors.filter((e) => !e.startsWith('v0: ')), `seed ${seed}`).toEqual([]);
    await expectRecovery(pool, scenario, seed, bad);
  }, timeoutAbove(RUNS_MS, RUNS_MS));

  it('a ring that lands after its status (a participant preempted between the two) does not desynchronise the scheduler', async () => {
    // A scheduler that counted rings would leave the start barrier once every status said
    // PARKED; the late START ring would then end the wait for a granted move at once, and from
    // there on two participants would move at a time — another trace, or a false deadlock whose
    // abandoned participant parks for good. Userspace's is the ring held back: its first move (building
    // the harvester, the oracle, the copier) is long enough to be caught in the middle. Every
    // worker of this pool runs the real participant with its START ring delayed.
    const pool = new ParticipantPool((index) => spawnBad(index, 'late-ring'));
    pools.push(pool);
    for (const seed of [testSeed(76), testSeed(77), testSeed(78)]) {
      const scenario = scenarioFor(seed);
      await withWatchdog(seed, RUNS_MS, 'late START ring, and the reference run', async () => {
        const r = await run(pool, scenario, seed);
        const reference = await run(healthy, scenario, seed);
        expect(r.abort, `seed ${seed}: ${r.abortDetail}`).toBeNull();
        expect(r.errors).toEqual([]);
        expect(r.trace).toEqual(reference.trace);
        expect(r.traceHash).toBe(reference.traceHash);
      });
    }
  }, timeoutAbove(RUNS_MS, RUNS_MS, RUNS_MS));

  it('two runs started together on one pool take turns, and each is the run it would be alone', async () => {
    const seeds = [testSeed(74), testSeed(75)];
    const scenarios = seeds.map(scenarioFor);
    const together = await withWatchdog(seeds[0]!, RUNS_MS, `concurrent runs of seeds ${seeds.join(' and ')}`, () =>
      Promise.all(seeds.map((seed, i) => run(healthy, scenarios[i]!, seed))),
    );
    for (const [i, seed] of seeds.entries()) {
      await withWatchdog(seed, RUNS_MS, 'the same run alone', async () => {
        const alone = await run(healthy, scenarios[i]!, seed);
        expect(together[i]!.abort, `seed ${seed}: ${together[i]!.abortDetail}`).toBeNull();
        expect(together[i]!.errors).toEqual([]);
        expect(together[i]!.traceHash).toBe(alone.traceHash);
      });
    }
  }, timeoutAbove(RUNS_MS, RUNS_MS, RUNS_MS));

  it('a chooser that picks a participant that may not move is an engine error: the run throws, the pool stays fit', async () => {
    const seed = testSeed(79);
    const scenario = scenarioFor(seed);
    // Userspace (0) parks at a wait early on; a chooser that always picks it grants it once it cannot move.
    const stubborn: Chooser = { choose: () => 0, chooseReadFrom: () => 0 };
    await withWatchdog(seed, RUNS_MS, 'a bad chooser, and the run after it', async () => {
      await expect(runControlled({ scenario, mutants: 0, seed, chooser: stubborn, liveness: LIVENESS }, healthy)).rejects.toThrow(AssertionError);
      const next = await run(healthy, scenario, seed);
      expect(next.abort, `seed ${seed}: ${next.abortDetail}`).toBeNull();
      expect(next.errors).toEqual([]);
    });
  }, timeoutAbove(RUNS_MS));
});
