/**
 * 10. Controlled mode against its ceiling: the steps and schedules (runs) per second of the
 * default controlled stress campaign (random strategy, sc, unconstrained scenarios, no mutant),
 * against a bare token hand-off between the same worker threads — the same ParticipantToken /
 * SchedulerToken / ParkWaiter code, the same number of participants, the same number of moves of
 * each participant in the same random order and the same control-plane call per participant and
 * run, and nothing else (no VM, no kernel code, no invariant check). That is the ceiling of this
 * design: an engine step can be no faster than the hand-off it is made of.
 *
 * Each repeat makes a batch of real runs, then replays its shape bare (the order rotates).
 */
import { Worker } from 'node:worker_threads';
import type { Remote } from 'comlink';
import { Prng, deriveSeed } from '../../src/base/prng.js';
import { watchNodeWorker } from '../../src/platform/node-worker.js';
import { RandomChooser } from '../../src/stress/controlled/choosers.js';
import { runControlled } from '../../src/stress/controlled/engine.js';
import { ParkWaiter } from '../../src/stress/controlled/park-wait.js';
import type { ControlledWorkerHandle, SpawnControlledWorker } from '../../src/stress/controlled/participant-api.js';
import { ParticipantPool, callWorker } from '../../src/stress/controlled/pool.js';
import { generateScenario } from '../../src/stress/controlled/scenario.js';
import { ParticipantStatus } from '../../src/stress/controlled/token-layout.js';
import { SchedulerToken } from '../../src/stress/controlled/token.js';
import { Step } from '../../src/kernel/step-hook.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';
import { benchWorkerUrl } from '../lib/workers.js';
import type { BareControlledWorkerApi } from '../workers/controlled-bare.js';

/** The streams the random strategy draws a run's scenario and choices from (strategies.ts). */
const SCENARIO_STREAM = 1;
const CHOOSER_STREAM = 2;
const FIRST_SEED = 5000;
/** Bounds of the bare run's waits (a hand-off takes microseconds). */
const BARE_WAIT_MS = 10_000;

/** One run's shape: how many moves each participant was granted, and the seed of its choices. */
interface RunShape {
  readonly seed: number;
  readonly moves: readonly number[];
}

interface Batch {
  readonly steps: number;
  readonly seconds: number;
  readonly runs: number;
}

type BareHandle = ControlledWorkerHandle & { readonly bare: Remote<BareControlledWorkerApi> };

/** Controlled workers that also speak `handOff`; the latest handle of each index is kept. */
function bareSpawner(handles: BareHandle[]): SpawnControlledWorker {
  return (index) => {
    const w = watchNodeWorker<BareControlledWorkerApi>(new Worker(benchWorkerUrl('controlled-bare'), { name: `controlled${index}` }), `bench controlled worker ${index}`);
    const h: BareHandle = {
      api: w.api,
      get failure() {
        return w.failure;
      },
      terminate: () => w.terminate(),
      bare: w.api,
    };
    handles[index] = h;
    return h;
  };
}

/** Real runs of seeds first .. first + runs − 1; their shapes for the bare replay. */
async function realBatch(pool: ParticipantPool, first: number, runs: number, shapes: RunShape[]): Promise<Batch> {
  let steps = 0;
  const t0 = now();
  for (let seed = first; seed < first + runs; seed++) {
    const scenario = generateScenario(new Prng(deriveSeed(seed, SCENARIO_STREAM)), {});
    const r = await runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(deriveSeed(seed, CHOOSER_STREAM)) }, pool);
    if (r.abort !== null || r.errors.length > 0) throw new Error(`controlled-ceiling: run ${seed} failed: ${r.abortDetail ?? r.errors[0]}`);
    const moves = new Array<number>(r.roster.vcpus + 1 + r.roster.extras.length).fill(0);
    for (const [q, step] of r.trace) if (step !== Step.READ_FROM) moves[q]!++;
    shapes.push({ seed, moves });
    steps += r.steps;
  }
  return { steps, seconds: (now() - t0) / 1000, runs };
}

/** One bare run of `shape` on the pool's threads: returns the hand-offs made. */
async function bareRun(pool: ParticipantPool, handles: readonly BareHandle[], shape: RunShape): Promise<number> {
  const parts = shape.moves.length;
  await pool.ensure(parts);
  const token = new SchedulerToken(parts);
  const mine = handles.slice(0, parts);
  const waiter = new ParkWaiter(token, mine);
  const calls = mine.map((h, p) => callWorker(h, h.bare.handOff(token.buffer, p, shape.moves[p]!), BARE_WAIT_MS, `bare hand-off of participant ${p}`));
  const chooser = new RandomChooser(deriveSeed(shape.seed, CHOOSER_STREAM));
  if ((await waiter.until(() => token.quiescent(), BARE_WAIT_MS)) !== 'ok') throw new Error('controlled-ceiling: bare participants did not all park');
  const enabled: number[] = [];
  let steps = 0;
  let last = -1;
  while (!token.allFinished()) {
    enabled.length = 0;
    for (let p = 0; p < parts; p++) if (token.status(p) === ParticipantStatus.PARKED) enabled.push(p);
    const q = chooser.choose(steps, enabled);
    token.grant(q);
    if ((await waiter.until(() => token.status(q) !== ParticipantStatus.RUNNING, BARE_WAIT_MS)) !== 'ok') throw new Error(`controlled-ceiling: bare participant ${q} did not park again`);
    steps++;
    last = q;
  }
  const done = await Promise.all(calls);
  const expected = shape.moves.reduce((a, b) => a + b, 0);
  if (steps !== expected || done.reduce((a, b) => a + b, 0) !== expected) throw new Error(`controlled-ceiling: bare run made ${steps} hand-offs, expected ${expected} (last ${last})`);
  return steps;
}

async function bareBatch(pool: ParticipantPool, handles: readonly BareHandle[], shapes: readonly RunShape[]): Promise<Batch> {
  let steps = 0;
  const t0 = now();
  for (const s of shapes) steps += await bareRun(pool, handles, s);
  return { steps, seconds: (now() - t0) / 1000, runs: shapes.length };
}

export const controlledCeilingSuite: Suite = {
  id: 'controlled-ceiling',
  title: '10. controlled mode vs a bare token hand-off',
  async run(ctx: SuiteContext): Promise<void> {
    const repeats = ctx.quick ? 4 : 10;
    const runs = ctx.quick ? 15 : 40;
    const handles: BareHandle[] = [];
    const pool = new ParticipantPool(bareSpawner(handles));
    const real: Batch[] = [];
    const bare: Batch[] = [];
    try {
      const warm: RunShape[] = [];
      await realBatch(pool, FIRST_SEED - 10, 10, warm); // workers started, code compiled
      await bareBatch(pool, handles, warm);
      let shapes: RunShape[] = [];
      for (let r = 0; r < repeats; r++) {
        // Controlled runs are deterministic, so the order can rotate: even repeats make a new
        // batch of seeds for real then replay its shapes bare; odd repeats replay the same
        // shapes bare first, then make the same runs for real again (checked to be the same).
        const first = FIRST_SEED + Math.floor(r / 2) * runs;
        if (r % 2 === 0) {
          shapes = [];
          real.push(await realBatch(pool, first, runs, shapes));
          bare.push(await bareBatch(pool, handles, shapes));
        } else {
          bare.push(await bareBatch(pool, handles, shapes));
          const again: RunShape[] = [];
          real.push(await realBatch(pool, first, runs, again));
          if (again.some((s, i) => s.moves.join() !== shapes[i]!.moves.join())) throw new Error(`controlled-ceiling: the runs from seed ${first} took other moves the second time`);
        }
        const a = real[r]!;
        const b = bare[r]!;
        ctx.log(`  repeat ${r + 1}: engine ${(a.steps / a.seconds).toFixed(0)} steps/s ${(a.runs / a.seconds).toFixed(1)} runs/s; bare ${(b.steps / b.seconds).toFixed(0)} steps/s ${(b.runs / b.seconds).toFixed(1)} runs/s`);
      }
    } finally {
      await pool.close();
    }
    const section = '10. controlled mode vs its ceiling';
    const name = `(default campaign: random, sc, ${runs} runs per batch)`;
    const extra = { runsPerBatch: runs, repeats, stepsPerRun: real.reduce((a, b) => a + b.steps, 0) / (runs * repeats) };
    ctx.reporter.add({
      id: 'controlled-ceiling.steps',
      section,
      name: `controlled steps ${name} vs bare token hand-off`,
      unit: 'steps/s',
      better: 'higher',
      samples: real.map((b) => b.steps / b.seconds),
      baseline: { name: 'bare hand-off, same threads', samples: bare.map((b) => b.steps / b.seconds) },
      extra,
    });
    ctx.reporter.add({
      id: 'controlled-ceiling.schedules',
      section,
      name: 'controlled schedules (runs) vs the same runs as bare hand-offs',
      unit: 'runs/s',
      better: 'higher',
      samples: real.map((b) => b.runs / b.seconds),
      baseline: { name: 'bare hand-off, same threads', samples: bare.map((b) => b.runs / b.seconds) },
      extra,
    });
  },
};
