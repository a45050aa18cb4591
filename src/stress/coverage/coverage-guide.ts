/**
 * Coverage-guided scenario generation (--coverage-guided): before each controlled run, the
 * guide may ask the generator for a scenario likely to reach an edge state that no run of the
 * campaign has reached yet — or, once every state has been reached, one of the least reached —
 * using that state's recipe (edge-states.ts). Its draws come from a stream of the run's seed,
 * so a guided campaign is still a function of its seed; a run's scenario, however, now depends
 * on the runs before it: replay a guided run from its trace file, not from its seed alone.
 */
import { Prng, deriveSeed } from '../../base/prng.js';
import type { ScenarioRequest } from '../controlled/scenario.js';
import type { ScenarioGuide } from '../controlled/strategies.js';
import { CoverageTally, type RunCoverage } from './campaign-coverage.js';
import { EDGE_STATES, type EdgeState, appliesTo } from './edge-states.js';
import { percent } from '../draw.js';

/** The guide's stream of a run's seed, apart from the scenario's and the chooser's. */
const GUIDE_STREAM = 3;
/** Runs steered while some state is unreached; the rest keep the default mix, whose variety matters too. */
const STEER_UNREACHED_PERCENT = 80;
/** Runs steered toward the least-reached states once every state has been reached. */
const STEER_LEAST_PERCENT = 30;

export class CoverageGuide implements ScenarioGuide {
  private readonly tally = new CoverageTally('controlled');
  private readonly states: readonly EdgeState[] = EDGE_STATES.filter((s) => appliesTo(s, 'controlled'));
  /** The state the last request aimed at (tests, reports). */
  lastTarget: string | null = null;

  request(seed: number): ScenarioRequest | null {
    const rng = new Prng(deriveSeed(seed, GUIDE_STREAM));
    const fewest = Math.min(...this.states.map((s) => this.tally.runsOf(s.id)));
    const steer = percent(rng, fewest === 0 ? STEER_UNREACHED_PERCENT : STEER_LEAST_PERCENT);
    const candidates = this.states.filter((s) => this.tally.runsOf(s.id) === fewest);
    const target = candidates[rng.below(candidates.length)]!;
    this.lastTarget = steer ? target.id : null;
    return steer ? target.recipe : null;
  }

  /** A run ended with this coverage. */
  observe(run: RunCoverage | null): void {
    this.tally.add(run);
  }
}
