/**
 * 12. Time to catch each known-bug mutant: what `dirtyring stress --mutant NAME` makes a user
 * wait for. For every mutant of the catalog (src/stress/mutant-catalog.ts) and each mode that
 * models it, one campaign per seed, as the CLI runs it (the mutant's scenario constraints, its
 * memory model, its bound, stop at the first forbidden run; no shrinking, which comes after the
 * catch), all on one harness whose worker pools are shared by the campaigns, as the CLI's are.
 * Figures: the wall time of the campaign to its first catch (median over seeds, worst in the
 * name) and the runs it took. No baseline and no target: the figure itself is what is felt.
 */
import { spawnNodeControlledWorker } from '../../src/platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { campaignSpec } from '../../src/stress/campaign-spec.js';
import { type MutantProfile, allMutantProfiles } from '../../src/stress/mutant-catalog.js';
import type { StressMode } from '../../src/stress/stress-mode.js';
import { summarize } from '../lib/stats.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';

/** Campaign seeds (full run; a quick run takes the first). */
const SEEDS = [101, 202, 303, 404, 505] as const;
const MODES: readonly StressMode[] = ['free', 'controlled'];
const MS_PER_S = 1000;

interface Catch {
  readonly seconds: number;
  /** Runs to the first catch; null when the campaign reached its bound without one. */
  readonly runs: number | null;
}

function applicable(m: MutantProfile, mode: StressMode): boolean {
  return m.notModelledIn?.[mode] === undefined && m.bound[mode] > 0;
}

async function catchOnce(harness: StressHarness, mode: StressMode, m: MutantProfile, seed: number): Promise<Catch> {
  const t0 = now();
  const r = await harness.runCampaign(campaignSpec(mode, { mutant: m, runs: m.bound[mode], seed, stopAtFirstForbidden: true }));
  return { seconds: (now() - t0) / MS_PER_S, runs: r.caughtAtRun };
}

function describe(c: readonly Catch[], bound: number): string {
  const caught = c.filter((x) => x.runs !== null).map((x) => x.runs!);
  const missed = c.length - caught.length;
  const runs = summarize(caught);
  const worstS = Math.max(...c.map((x) => x.seconds));
  const runsText = caught.length > 0 ? `runs to catch: median ${runs.median}, worst ${runs.max} (bound ${bound})` : `never within ${bound} runs`;
  return `${runsText}${missed > 0 ? `, NOT CAUGHT with ${missed} seed(s)` : ''}; worst ${worstS.toFixed(2)} s`;
}

export const mutantCatchSuite: Suite = {
  id: 'mutant-catch',
  title: '12. time to catch each known-bug mutant',
  async run(ctx: SuiteContext): Promise<void> {
    const seeds = ctx.quick ? SEEDS.slice(0, 1) : SEEDS;
    const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker });
    const results: { mode: StressMode; m: MutantProfile; catches: Catch[] }[] = [];
    try {
      // Unrecorded: the worker pools started and the code compiled, which only the first
      // campaign of a `stress` process pays.
      for (const mode of MODES) await harness.runCampaign(campaignSpec(mode, { runs: 2, seed: 1 }));
      for (const mode of MODES) {
        for (const m of allMutantProfiles()) {
          if (!applicable(m, mode)) continue;
          const catches: Catch[] = [];
          for (const seed of seeds) catches.push(await catchOnce(harness, mode, m, seed));
          results.push({ mode, m, catches });
          ctx.log(`  ${mode} ${m.name}: ${catches.map((c) => `${c.runs ?? 'missed'} runs ${c.seconds.toFixed(2)} s`).join(', ')}`);
        }
      }
    } finally {
      await harness.close();
    }
    const section = `12. time to catch a mutant (${seeds.length} seed${seeds.length > 1 ? 's' : ''})`;
    for (const mode of MODES) {
      const mine = results.filter((r) => r.mode === mode);
      // The whole `stress --mutant all` of this mode, per seed: what a user waits for once.
      const totals = seeds.map((_, i) => mine.reduce((a, r) => a + r.catches[i]!.seconds, 0));
      ctx.reporter.add({
        id: `mutant-catch.${mode}.all`,
        section,
        name: `all ${mine.length} mutants one after another, ${mode} (stress --mutant all); worst ${Math.max(...totals).toFixed(1)} s`,
        unit: 's',
        better: 'lower',
        samples: totals,
        extra: { seeds: seeds.join(' '), mutants: mine.length },
      });
      for (const r of mine) {
        const runs = r.catches.map((c) => c.runs ?? -1);
        ctx.reporter.add({
          id: `mutant-catch.${mode}.${r.m.name}`,
          section,
          name: `${r.m.name}, ${mode}: ${describe(r.catches, r.m.bound[mode])}`,
          unit: 's',
          better: 'lower',
          samples: r.catches.map((c) => c.seconds),
          extra: { runsToCatch: runs.join(' '), bound: r.m.bound[mode], seeds: seeds.join(' '), notCaught: runs.filter((x) => x < 0).length },
        });
      }
    }
  },
};
