/**
 * 7. Controlled-mode speed under a weak memory model: the same controlled runs (scenarios and
 * chooser seeds) made under `sc` (no model) and under `arm64` (every ring entry, ring index,
 * SPTE and bitmap access through the model, a read-from decision wherever a load has a choice,
 * control-word synchronization at every park), in alternating batches of the same process, on
 * the same pool of participant workers. Figures: steps per second and runs (schedules) per
 * second, arm64 against sc; the target is arm64 within 3× of sc.
 */
import { Prng, deriveSeed } from '../../src/base/prng.js';
import type { MemoryModel } from '../../src/kernel/wmm/ordering.js';
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { RandomChooser } from '../../src/stress/controlled/choosers.js';
import { runControlled } from '../../src/stress/controlled/engine.js';
import { ParticipantPool } from '../../src/stress/controlled/pool.js';
import { generateScenario } from '../../src/stress/controlled/scenario.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';

const SCENARIO_STREAM = 1;
const CHOOSER_STREAM = 2;
const FIRST_SEED = 1000;

interface Batch {
  readonly stepsPerSecond: number;
  readonly runsPerSecond: number;
}

/** `runs` controlled runs from seed `first` on, under `model`. */
async function batch(pool: ParticipantPool, model: MemoryModel, first: number, runs: number): Promise<Batch> {
  let steps = 0;
  const t0 = now();
  for (let seed = first; seed < first + runs; seed++) {
    // Under arm64 only the ACQ_REL ring, as real arm64 kernels: the runs are then the same work.
    const scenario = generateScenario(new Prng(deriveSeed(seed, SCENARIO_STREAM)), { ringCap: 'ring-acqrel' });
    const r = await runControlled({ scenario, mutants: 0, seed, chooser: new RandomChooser(deriveSeed(seed, CHOOSER_STREAM)), memoryModel: model }, pool);
    if (r.abort !== null || r.errors.length > 0) throw new Error(`controlled bench: run ${seed} under ${model} failed: ${r.abortDetail ?? r.errors[0]}`);
    steps += r.steps;
  }
  const s = (now() - t0) / 1000;
  return { stepsPerSecond: steps / s, runsPerSecond: runs / s };
}

export const controlledSuite: Suite = {
  id: 'controlled',
  title: '7. controlled mode: sc vs arm64 memory model',
  async run(ctx: SuiteContext): Promise<void> {
    // Many short alternating batches: on a shared machine, neighbouring batches see the same load.
    const repeats = ctx.quick ? 6 : 16;
    const runs = ctx.quick ? 20 : 40;
    const pool = new ParticipantPool(spawnNodeControlledWorker);
    const sc: Batch[] = [];
    const arm: Batch[] = [];
    try {
      await batch(pool, 'arm64', FIRST_SEED, 5); // warm-up: workers started, code compiled
      for (let r = 0; r < repeats; r++) {
        const first = FIRST_SEED + r * runs;
        sc.push(await batch(pool, 'sc', first, runs));
        arm.push(await batch(pool, 'arm64', first, runs));
        ctx.log(`  repeat ${r + 1}: sc ${sc[r]!.runsPerSecond.toFixed(1)} runs/s, arm64 ${arm[r]!.runsPerSecond.toFixed(1)} runs/s`);
      }
    } finally {
      await pool.close();
    }
    const section = '7. controlled mode';
    const target = { text: 'arm64 within 3× of sc', minRatio: 1 / 3 };
    ctx.reporter.add({
      id: 'controlled.steps',
      section,
      name: `controlled steps, arm64 model vs sc (${runs} runs per batch)`,
      unit: 'steps/s',
      better: 'higher',
      samples: arm.map((b) => b.stepsPerSecond),
      baseline: { name: 'sc (no model)', samples: sc.map((b) => b.stepsPerSecond) },
      target,
    });
    ctx.reporter.add({
      id: 'controlled.schedules',
      section,
      name: 'controlled runs (schedules), arm64 model vs sc',
      unit: 'runs/s',
      better: 'higher',
      samples: arm.map((b) => b.runsPerSecond),
      baseline: { name: 'sc (no model)', samples: sc.map((b) => b.runsPerSecond) },
      target,
    });
  },
};
