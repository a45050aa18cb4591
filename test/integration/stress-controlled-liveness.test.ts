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
import { afterAll, describe, expect, it } from 'vitest';
import { Prng, deriveSeed } from '../../src/guest/workloads.js';
import { controlledWorkerHandle, spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { RandomChooser } from '../../src/stress/controlled/choosers.js';
import { classifyControlled } from '../../src/stress/controlled/classify.js';
import { ControlStep } from '../../src/stress/controlled/control-steps.js';
import { type ControlledLiveness, type ControlledRunResult, runControlled } from '../../src/stress/controlled/engine.js';
import type { ControlledWorkerHandle } from '../../src/stress/controlled/participant-api.js';
import { ParticipantPool } from '../../src/stress/controlled/pool.js';
import { type ControlledScenario, generateScenario } from '../../src/stress/controlled/scenario.js';
import { testSeed, withWatchdog } from '../helpers/watchdog.js';

type BadMode = 'silent' | 'crash' | 'wedge';

// A stand-in worker: answers ping, and on run either does nothing (the run is never taken),
// exits (a crash), or parks at START and, once granted, blocks (bounded, for the test's sake)
// without ever parking again.
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

const TOKEN_URL = new URL('../../dist/src/stress/controlled/token.js', import.meta.url).href;

function spawnBad(index: number, mode: BadMode): ControlledWorkerHandle {
  const worker = new Worker(BAD_WORKER, { eval: true, name: `bad-controlled${index}`, workerData: { mode, tokenUrl: TOKEN_URL, startStep: ControlStep.START } });
  return controlledWorkerHandle(worker, index);
}

/** A pool whose worker 1 (vCPU 0's) is a bad one the first time it is spawned. */
function poolWithBadWorker(mode: BadMode): ParticipantPool {
  let bad = 1;
  return new ParticipantPool((index) => (index === 1 && bad-- > 0 ? spawnBad(index, mode) : spawnNodeControlledWorker(index)));
}

// Short bounds keep the test quick; they only decide how soon a bad run is given up.
const LIVENESS: ControlledLiveness = { startMs: 1500, stepMs: 1500, resultMs: 1000 };
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

/** The bad run is classified, and the pool gives the next run a fresh worker. */
async function expectRecovery(pool: ParticipantPool, scenario: ControlledScenario, seed: number, bad: ControlledRunResult): Promise<void> {
  expect(classifyControlled(bad)).toContain('harness-error');
  expect(bad.errors.some((e) => e.startsWith('v0: ') && e.endsWith('worker replaced')), JSON.stringify(bad.errors)).toBe(true);
  const next = await run(pool, scenario, seed);
  expect(next.abort, `seed ${seed}: ${next.abortDetail}`).toBeNull();
  expect(next.errors).toEqual([]);
  expect(classifyControlled(next)).not.toContain('harness-error');
  // Nothing of the bad run leaked into it: the same run on a pool that never had a bad worker.
  const reference = await run(healthy, scenario, seed);
  expect(next.traceHash).toBe(reference.traceHash);
  expect(next.trace).toEqual(reference.trace);
}

describe('controlled runs stay live when a participant worker fails', () => {
  it('a worker that never takes its run: the run stops at the start bound, the worker is replaced', async () => {
    const seed = testSeed(71);
    const pool = poolWithBadWorker('silent');
    pools.push(pool);
    const scenario = scenarioFor(seed);
    const bad = await withWatchdog(seed, 30_000, 'silent worker', () => run(pool, scenario, seed));
    expect(bad.abort).toBe('stuck');
    expect(bad.steps).toBe(0);
    expect(bad.abortDetail).toContain('did not all reach their first step');
    expect(bad.abortDetail).toContain('v0 never started');
    await expectRecovery(pool, scenario, seed, bad);
  });

  it('a worker that dies during its run: worker-lost, with the worker\'s exit in the detail', async () => {
    const seed = testSeed(72);
    const pool = poolWithBadWorker('crash');
    pools.push(pool);
    const scenario = scenarioFor(seed);
    const bad = await withWatchdog(seed, 30_000, 'crashing worker', () => run(pool, scenario, seed));
    expect(bad.abort).toBe('worker-lost');
    expect(bad.abortDetail).toContain("v0's worker died");
    expect(bad.abortDetail).toContain('exited with code 3');
    await expectRecovery(pool, scenario, seed, bad);
  });

  it('a participant granted a move that never parks again: stuck, the others unwind, the worker is replaced', async () => {
    const seed = testSeed(73);
    const pool = poolWithBadWorker('wedge');
    pools.push(pool);
    const scenario = scenarioFor(seed);
    const bad = await withWatchdog(seed, 30_000, 'wedged participant', () => run(pool, scenario, seed));
    expect(bad.abort).toBe('stuck');
    expect(bad.abortDetail).toMatch(/^v0 did not reach its next step within \d+ ms after start/);
    expect(bad.abortDetail).toContain('v0 running, granted at start');
    // The healthy participants were parked: they unwound and reported.
    expect(bad.errors.filter((e) => !e.startsWith('v0: '))).toEqual([]);
    await expectRecovery(pool, scenario, seed, bad);
  });

  it('two runs started together on one pool take turns, and each is the run it would be alone', async () => {
    const seeds = [testSeed(74), testSeed(75)];
    const scenarios = seeds.map(scenarioFor);
    const together = await withWatchdog(seeds[0]!, 30_000, 'concurrent runs', () =>
      Promise.all(seeds.map((seed, i) => run(healthy, scenarios[i]!, seed))),
    );
    for (const [i, seed] of seeds.entries()) {
      const alone = await run(healthy, scenarios[i]!, seed);
      expect(together[i]!.abort, `seed ${seed}: ${together[i]!.abortDetail}`).toBeNull();
      expect(together[i]!.errors).toEqual([]);
      expect(together[i]!.traceHash).toBe(alone.traceHash);
    }
  });
});
