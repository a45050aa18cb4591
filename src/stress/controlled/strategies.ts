/**
 * Scheduling strategies as a campaign runs them. For each run a strategy plans the seed, the
 * scenario and the chooser; once the run ended it is told the result. Random and pct draw a
 * new scenario and a new seeded chooser for every run; dfs explores the schedules of one
 * scenario, one run per schedule, and retries a schedule whose run the harness lost.
 */
import { Prng, deriveSeed } from '../../base/prng.js';
import { type Chooser, PctChooser, RandomChooser, ReplayChooser } from './choosers.js';
import { DfsExplorer } from './dfs.js';
import { type ControlledRunResult, harnessLost } from './engine.js';
import { type ControlledScenario, type ScenarioRequest, type ScenarioShape, describeScenario, estimateSteps, generateScenario, rosterOf } from './scenario.js';
import { participantCount } from './control-steps.js';

export const STRATEGIES = ['random', 'pct', 'dfs'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface StrategyOptions {
  /** pct: bug depth d (d − 1 priority change points). */
  readonly pctDepth: number;
  /** dfs: most preemptions per schedule. */
  readonly preemptionBound: number;
  /** Weak models: random's share of stale read-from decisions, pct's stale loads per run, dfs's bound on them. */
  readonly staleRate: number;
  readonly staleDepth: number;
  readonly staleBound: number;
}

/**
 * Independent streams derived from a run's seed: the scenario's and the chooser's draws never
 * depend on each other, so changing how one is drawn leaves the other as it was.
 */
const SCENARIO_STREAM = 1;
const CHOOSER_STREAM = 2;

/**
 * Retries of a dfs schedule whose run the harness lost (a worker died, a participant hung)
 * before the schedule is given up and the exploration reported incomplete.
 */
const DFS_HARNESS_RETRIES = 2;

/** A scenario generated from a seed, with the shape a strategy asks for (or any shape). */
export type ScenarioSource = (seed: number, shape?: ScenarioShape) => ControlledScenario;

/** Steers generation run by run (coverage-guided campaigns): a request for the run of `seed`, or null. */
export interface ScenarioGuide {
  request(seed: number): ScenarioRequest | null;
}

/**
 * Scenarios under a campaign's constraints (a mutant's, --log), which win over a strategy's
 * shape, which wins over what a guide asks for.
 */
export function scenarioSource(constraints: ScenarioRequest, guide: ScenarioGuide | null = null): ScenarioSource {
  return (seed, shape) =>
    generateScenario(new Prng(deriveSeed(seed, SCENARIO_STREAM)), { ...guide?.request(seed), ...(shape && { shape }), ...constraints });
}

/** One run as its strategy planned it. */
export interface StrategyRun {
  readonly seed: number;
  readonly scenario: ControlledScenario;
  readonly chooser: Chooser;
  /** Tells apart, in trace file names, runs that share a seed (dfs: the schedule, a retry). */
  readonly fileTag: string;
  /** A chooser that makes this run's choices again, for the determinism self-check. */
  again(result: ControlledRunResult): Chooser;
  /** The run ended (before any rerun of it). */
  end(result: ControlledRunResult): void;
}

/** What a strategy that explores a tree covered (dfs). */
export interface Exploration {
  readonly scenario: string;
  readonly schedules: number;
  /** Every schedule within the bound was run (false too when the harness made one be given up). */
  readonly exhausted: boolean;
}

export interface SchedulingStrategy {
  /** The next run; `runSeed` is the campaign's seed for it. Null once nothing is left to run. */
  startRun(runSeed: number): StrategyRun | null;
  /** What was explored, for strategies that explore a tree; null for the others. */
  exploration(): Exploration | null;
}

export function createStrategy(name: Strategy, o: StrategyOptions, campaignSeed: number, scenarios: ScenarioSource): SchedulingStrategy {
  switch (name) {
    case 'random':
      return new SeededStrategy(scenarios, (seed) => new RandomChooser(deriveSeed(seed, CHOOSER_STREAM), o.staleRate));
    case 'pct':
      return new SeededStrategy(
        scenarios,
        (seed, s) => new PctChooser(deriveSeed(seed, CHOOSER_STREAM), participantCount(rosterOf(s)), estimateSteps(s), o.pctDepth, o.staleDepth),
      );
    case 'dfs':
      return new DfsStrategy(campaignSeed, o.preemptionBound, o.staleBound, scenarios);
  }
}

/** Why a campaign of `name` cannot be split into shards, or null when it can. */
export function shardRefusal(name: Strategy): string | null {
  // Every shard would explore the same one tree.
  return name === 'dfs' ? 'dfs explores one schedule tree; shard random or pct campaigns' : null;
}

/** Random and pct: each run its own scenario and chooser, both from the run's seed. */
class SeededStrategy implements SchedulingStrategy {
  constructor(
    private readonly scenarios: ScenarioSource,
    private readonly chooserFor: (seed: number, scenario: ControlledScenario) => Chooser,
  ) {}

  startRun(runSeed: number): StrategyRun {
    const scenario = this.scenarios(runSeed);
    // The same seed makes the same choices: a fresh chooser is the rerun's.
    const fresh = (): Chooser => this.chooserFor(runSeed, scenario);
    return { seed: runSeed, scenario, chooser: fresh(), fileTag: '', again: fresh, end: () => undefined };
  }

  exploration(): null {
    return null;
  }
}

/** Bounded exhaustive exploration of one micro scenario drawn from the campaign seed. */
class DfsStrategy implements SchedulingStrategy {
  private readonly explorer: DfsExplorer;
  private readonly scenario: ControlledScenario;

  constructor(
    private readonly campaignSeed: number,
    preemptionBound: number,
    staleBound: number,
    scenarios: ScenarioSource,
  ) {
    this.explorer = new DfsExplorer(preemptionBound, staleBound);
    this.scenario = scenarios(campaignSeed, 'micro');
  }

  startRun(): StrategyRun | null {
    const explorer = this.explorer;
    if (explorer.exhausted) return null;
    const chooser = explorer.nextRun();
    return {
      seed: this.campaignSeed,
      scenario: this.scenario,
      chooser,
      // Named before the run: a retry of a schedule keeps its number and gets its own file.
      fileTag: `-schedule${explorer.schedules}${explorer.retries > 0 ? `-retry${explorer.retries}` : ''}`,
      // The explorer's chooser follows the tree; a rerun follows the choices it made.
      again: (result) => new ReplayChooser(result.choices, true),
      end: (result) => {
        // A run the harness lost says nothing about its schedule: retry it rather than prune.
        if (harnessLost(result)) explorer.harnessFailed(DFS_HARNESS_RETRIES);
        else explorer.advance();
      },
    };
  }

  exploration(): Exploration {
    return { scenario: describeScenario(this.scenario), schedules: this.explorer.schedules, exhausted: this.explorer.complete };
  }
}
