/**
 * A stress campaign: many seeded runs of one mode, classified into an outcome table.
 *
 *  - free: real worker threads (`dirtyring run`), each run a generated configuration with
 *    random perturbation; run i uses seed `seed + i`, which fixes its configuration and
 *    perturbation (the interleaving is the machine's).
 *  - controlled: micro-runs under the controlled scheduler with the chosen strategy; run i uses
 *    seed `seed + i` for its scenario and its choices, so it is reproducible exactly. With dfs,
 *    the campaign explores the schedules of one scenario (from `seed`) depth-first instead.
 *
 * `shard k/n` keeps the runs whose index is k − 1 modulo n, so n machines split one campaign.
 * A failing controlled run is run a second time from its seed (a determinism self-check),
 * written to a schedule file, and shrunk. A mutant campaign stops at its first forbidden run.
 */
import { join } from 'node:path';
import { Prng, deriveSeed } from '../base/prng.js';
import type { RunSummary } from '../harness/run.js';
import { ConfigError } from '../base/config-error.js';
import { now } from '../base/clock.js';
import { harvesterLogMode } from './harvesters/harvester-variants.js';
import type { LogMode } from '../userspace/log-collectors.js';
import type { SpawnVcpuWorker } from '../userspace/vcpu-worker-api.js';
import { VcpuWorkerPool } from '../userspace/vcpu-worker-pool.js';
import { type Chooser, PctChooser, RandomChooser, ReplayChooser } from './controlled/choosers.js';
import { classifyControlled } from './controlled/classify.js';
import { DfsExplorer } from './controlled/dfs.js';
import { type ControlledRunResult, runControlled } from './controlled/engine.js';
import type { SpawnControlledWorker } from './controlled/participant-api.js';
import { ParticipantPool } from './controlled/pool.js';
import {
  type ControlledScenario,
  type ScenarioRequest,
  describeScenario,
  estimateSteps,
  generateScenario,
} from './controlled/scenario.js';
import { type CaseSize, shrinkFailure } from './controlled/shrink.js';
import { formatChoices } from './controlled/trace.js';
import { type FreeRequest, describeFreeScenario, generateFreeScenario } from './free/free-scenario.js';
import { runFreeScenario } from './free/free-run.js';
import type { MutantProfile } from './mutant-catalog.js';
import {
  type OutcomeClass,
  type OutcomeKind,
  type OutcomeRow,
  OutcomeTable,
  isFailing,
  isForbidden,
  outcomeClass,
  primaryOutcome,
} from './outcome.js';
import { controlledScheduleFile, freeTraceFile, writeJsonFile } from './schedule-file.js';

export const STRESS_MODES = ['free', 'controlled'] as const;
export type StressMode = (typeof STRESS_MODES)[number];
export const STRATEGIES = ['random', 'pct', 'dfs'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
}

export interface CampaignSpec {
  readonly mode: StressMode;
  readonly strategy: Strategy;
  /** pct: bug depth d (d − 1 priority change points). */
  readonly pctDepth: number;
  /** dfs: most preemptions per schedule. */
  readonly preemptionBound: number;
  /** Runs in the whole campaign (before sharding); null: until the time budget. */
  readonly runs: number | null;
  readonly timeBudgetMs: number | null;
  readonly seed: number;
  readonly shard: Shard | null;
  readonly mutant: MutantProfile | null;
  readonly log: LogMode | null;
  /** Stop at the first forbidden run (mutant campaigns). */
  readonly stopAtFirstForbidden: boolean;
  /** Shrink failing controlled runs. */
  readonly shrink: boolean;
  /** Run every controlled run twice (not only failing ones) and compare the traces. */
  readonly checkEveryRun: boolean;
  /** Where failing runs' trace files go (null: not written). */
  readonly traceDir: string | null;
}

/** Defaults shared by campaignSpec and the CLI's options. */
export const DEFAULT_CAMPAIGN_RUNS = 1000;
export const DEFAULT_PCT_DEPTH = 3;
export const DEFAULT_PREEMPTION_BOUND = 2;

/**
 * Retries of a dfs schedule whose run the harness lost (a worker died, a participant hung)
 * before the schedule is given up and the exploration reported incomplete.
 */
const DFS_HARNESS_RETRIES = 2;

/**
 * A campaign for library callers and tests, changed by `over`: random strategy, the shared
 * run count, PCT depth and preemption bound, a fixed seed 1, every logging interface, no
 * mutant, no shrinking, no trace files. The CLI builds its own spec: its seed is random,
 * shrinking is on and trace files go to a directory.
 */
export function campaignSpec(mode: StressMode, over: Partial<CampaignSpec> = {}): CampaignSpec {
  return {
    mode,
    strategy: 'random',
    pctDepth: DEFAULT_PCT_DEPTH,
    preemptionBound: DEFAULT_PREEMPTION_BOUND,
    runs: DEFAULT_CAMPAIGN_RUNS,
    timeBudgetMs: null,
    seed: 1,
    shard: null,
    mutant: null,
    log: null,
    stopAtFirstForbidden: false,
    shrink: false,
    checkEveryRun: false,
    traceDir: null,
    ...over,
  };
}

export interface ShrunkRecord {
  readonly from: CaseSize;
  readonly to: CaseSize;
  readonly schedule: string;
  readonly traceFile: string | null;
  readonly attempts: number;
}

export interface RunRecord {
  /** Index in the campaign (before sharding). */
  readonly index: number;
  readonly seed: number;
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  /** The configuration in one line. */
  readonly config: string;
  /** The configuration in full (a controlled scenario, or a free run's config and perturbation). */
  readonly scenario: unknown;
  readonly outcome: OutcomeKind;
  readonly cls: OutcomeClass;
  readonly outcomes: OutcomeKind[];
  readonly elapsedMs: number;
  /** Controlled: steps, trace hash, and whether a second run of the seed gave the same trace. */
  readonly steps: number | null;
  readonly traceHash: string | null;
  readonly deterministic: boolean | null;
  /** Controlled, failing: the schedule (choices), compactly. */
  readonly schedule: string | null;
  /** First lost page, mismatch or error, in words. */
  readonly detail: string | null;
  readonly traceFile: string | null;
  readonly shrunk: ShrunkRecord | null;
}

export interface CampaignResult {
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  readonly seed: number;
  readonly shard: Shard | null;
  readonly runs: number;
  readonly table: OutcomeRow[];
  readonly classes: Record<OutcomeClass, number>;
  readonly records: RunRecord[];
  /** A forbidden outcome was seen (for a mutant: it was caught). */
  readonly caught: boolean;
  /** Runs executed when the first forbidden outcome was seen (1-based). */
  readonly caughtAtRun: number | null;
  /** dfs: schedules explored and whether the bounded tree was exhausted. */
  readonly dfs: {
    readonly scenario: string;
    readonly schedules: number;
    /** Every schedule within the bound was run (false too when the harness made one be given up). */
    readonly exhausted: boolean;
  } | null;
  readonly elapsedMs: number;
}

export interface StressPlatform {
  readonly spawnVcpu: SpawnVcpuWorker;
  readonly spawnControlled: SpawnControlledWorker;
}

export type RunListener = (record: RunRecord, done: number, expected: number | null) => void;

/** Owns the worker pools, so that several campaigns (e.g. one per mutant) share them. */
export class StressHarness {
  private vcpuPool: VcpuWorkerPool | null = null;
  private controlledPool: ParticipantPool | null = null;

  constructor(private readonly platform: StressPlatform) {}

  get participants(): ParticipantPool {
    this.controlledPool ??= new ParticipantPool(this.platform.spawnControlled);
    return this.controlledPool;
  }

  private get vcpus(): VcpuWorkerPool {
    this.vcpuPool ??= new VcpuWorkerPool(this.platform.spawnVcpu);
    return this.vcpuPool;
  }

  /** A vCPU worker spawner backed by the pool (free runs). */
  get vcpuSpawn(): SpawnVcpuWorker {
    return this.vcpus.spawn;
  }

  async close(): Promise<void> {
    await this.vcpuPool?.close();
    await this.controlledPool?.close();
    this.vcpuPool = null;
    this.controlledPool = null;
  }

  async runCampaign(spec: CampaignSpec, onRun?: RunListener): Promise<CampaignResult> {
    checkSpec(spec);
    const t0 = now();
    const table = new OutcomeTable();
    const records: RunRecord[] = [];
    let caughtAtRun: number | null = null;
    const dfs = spec.mode === 'controlled' && spec.strategy === 'dfs' ? new DfsExplorer(spec.preemptionBound) : null;
    const dfsScenario = dfs ? generateScenario(new Prng(deriveSeed(spec.seed, 1)), this.controlledRequest(spec, 'micro')) : null;
    const expected = expectedRuns(spec);
    for (let i = 0; ; i++) {
      if (spec.runs !== null && i >= spec.runs) break;
      if (spec.timeBudgetMs !== null && now() - t0 >= spec.timeBudgetMs) break;
      if (dfs?.exhausted) break;
      if (spec.shard && i % spec.shard.count !== spec.shard.index - 1) continue;
      const seed = dfs ? spec.seed : (spec.seed + i) >>> 0;
      const record =
        spec.mode === 'free'
          ? await this.freeRun(spec, i, seed)
          : await this.controlledRun(spec, i, seed, dfs && dfsScenario ? { explorer: dfs, scenario: dfsScenario } : null);
      records.push(record);
      table.add(record.outcomes, seed);
      if (caughtAtRun === null && isForbidden(record.outcomes)) caughtAtRun = records.length;
      onRun?.(record, records.length, expected);
      if (spec.stopAtFirstForbidden && caughtAtRun !== null) break;
    }
    return {
      mode: spec.mode,
      strategy: spec.mode === 'controlled' ? spec.strategy : null,
      mutant: spec.mutant?.name ?? null,
      seed: spec.seed,
      shard: spec.shard,
      runs: records.length,
      table: table.rows(),
      classes: {
        acceptable: table.byClass('acceptable'),
        interesting: table.byClass('interesting'),
        forbidden: table.byClass('forbidden'),
        error: table.byClass('error'),
      },
      records,
      caught: caughtAtRun !== null,
      caughtAtRun,
      dfs: dfs && dfsScenario ? { scenario: describeScenario(dfsScenario), schedules: dfs.schedules, exhausted: dfs.complete } : null,
      elapsedMs: Math.round(now() - t0),
    };
  }

  /** The mutant's constraints win over the shape (dfs's micro), and --log over both. */
  private controlledRequest(spec: CampaignSpec, shape?: ScenarioRequest['shape']): ScenarioRequest {
    return { ...(shape && { shape }), ...spec.mutant?.controlled, ...(spec.log !== null && { log: spec.log }) };
  }

  private freeRequest(spec: CampaignSpec): FreeRequest {
    const base: FreeRequest = spec.mutant?.free ?? {};
    return spec.log !== null ? { ...base, log: spec.log } : base;
  }

  private chooserFor(spec: CampaignSpec, seed: number, scenario: ControlledScenario): Chooser {
    return spec.strategy === 'pct'
      ? new PctChooser(deriveSeed(seed, 2), scenario.vcpus + 1, estimateSteps(scenario), spec.pctDepth)
      : new RandomChooser(deriveSeed(seed, 2));
  }

  private async controlledRun(
    spec: CampaignSpec,
    index: number,
    seed: number,
    dfs: { explorer: DfsExplorer; scenario: ControlledScenario } | null,
  ): Promise<RunRecord> {
    const pool = this.participants;
    const mutants = spec.mutant?.bit ?? 0;
    const scenario = dfs ? dfs.scenario : generateScenario(new Prng(deriveSeed(seed, 1)), this.controlledRequest(spec));
    const chooser = dfs ? dfs.explorer.nextRun() : this.chooserFor(spec, seed, scenario);
    // Named before the run: a retry of a dfs schedule keeps its number and gets its own file.
    const schedule = dfs ? `-schedule${dfs.explorer.schedules}${dfs.explorer.retries > 0 ? `-retry${dfs.explorer.retries}` : ''}` : '';
    const r = await runControlled({ scenario, mutants, seed, chooser }, pool);
    if (dfs) {
      // A run the harness lost says nothing about its schedule: retry it rather than prune.
      if (r.abort === 'stuck' || r.abort === 'worker-lost') dfs.explorer.harnessFailed(DFS_HARNESS_RETRIES);
      else dfs.explorer.advance();
    }
    const outcomes = classifyControlled(r);
    const failing = isFailing(outcomes);
    let deterministic: boolean | null = null;
    if (failing || spec.checkEveryRun) {
      // FoundationDB-style self-check: the same seed (or the same choices) must give the same trace.
      const again = await runControlled(
        { scenario, mutants, seed, chooser: dfs ? new ReplayChooser(r.choices, true) : this.chooserFor(spec, seed, scenario) },
        pool,
      );
      deterministic = again.traceHash === r.traceHash && again.abort !== 'divergence';
      if (!deterministic) outcomes.push('nondeterministic');
    }
    const tag = `${spec.mutant?.name ?? 'unmutated'}-${spec.strategy}-seed${seed}${schedule}`;
    let shrunk: ShrunkRecord | null = null;
    if (isForbidden(outcomes) && spec.shrink) {
      shrunk = await this.shrink(r, spec, tag);
      // shrinkFailure only gives up when its final case, replayed strictly, no longer fails:
      // the same choices gave two different runs.
      if (shrunk === null && !outcomes.includes('nondeterministic')) {
        deterministic = false;
        outcomes.push('nondeterministic');
      }
    }
    const outcome = primaryOutcome(outcomes);
    let traceFile: string | null = null;
    if (failing && spec.traceDir !== null) {
      traceFile = join(spec.traceDir, `controlled-${tag}.json`);
      writeJsonFile(traceFile, controlledScheduleFile(r, spec.strategy, outcome, outcomes));
    }
    return {
      index,
      seed,
      mode: 'controlled',
      strategy: spec.strategy,
      mutant: spec.mutant?.name ?? null,
      config: describeScenario(scenario),
      scenario,
      outcome,
      cls: outcomeClass(outcome),
      outcomes,
      elapsedMs: r.elapsedMs,
      steps: r.steps,
      traceHash: r.traceHash,
      deterministic,
      schedule: failing ? formatChoices(r.choices) : null,
      detail: controlledDetail(r),
      traceFile,
      shrunk,
    };
  }

  private async shrink(r: ControlledRunResult, spec: CampaignSpec, tag: string): Promise<ShrunkRecord | null> {
    const s = await shrinkFailure(r, this.participants);
    if (s === null) return null;
    const outcomes = classifyControlled(s.run);
    let traceFile: string | null = null;
    if (spec.traceDir !== null) {
      traceFile = join(spec.traceDir, `controlled-${tag}-shrunk.json`);
      const from = { steps: s.from.decisions, vcpus: s.from.vcpus, stores: s.from.stores, pages: s.from.pages };
      // The file's choices are the shrunk prefix: a strict replay follows them, then preempts nobody.
      writeJsonFile(traceFile, { ...controlledScheduleFile(s.run, `${spec.strategy}, shrunk`, primaryOutcome(outcomes), outcomes, from), choices: s.choices, schedule: formatChoices(s.choices) });
    }
    return { from: s.from, to: s.to, schedule: formatChoices(s.choices), traceFile, attempts: s.attempts };
  }

  private async freeRun(spec: CampaignSpec, index: number, seed: number): Promise<RunRecord> {
    const scenario = generateFreeScenario(seed, this.freeRequest(spec));
    const mutants = spec.mutant?.bit ?? 0;
    const t0 = now();
    const r = await runFreeScenario(scenario, mutants, this.vcpus.spawn);
    const outcomes = r.outcomes;
    const outcome = primaryOutcome(outcomes);
    let traceFile: string | null = null;
    if (isFailing(outcomes) && spec.traceDir !== null) {
      traceFile = join(spec.traceDir, `free-${spec.mutant?.name ?? 'unmutated'}-seed${seed}.json`);
      writeJsonFile(traceFile, freeTraceFile(scenario, mutants, outcome, outcomes, r.summary));
    }
    // The record has the seed already.
    const { seed: _seed, ...config } = scenario;
    return {
      index,
      seed,
      mode: 'free',
      strategy: null,
      mutant: spec.mutant?.name ?? null,
      config: describeFreeScenario(scenario),
      scenario: config,
      outcome,
      cls: outcomeClass(outcome),
      outcomes,
      elapsedMs: Math.round(now() - t0),
      steps: null,
      traceHash: null,
      deterministic: null,
      schedule: null,
      detail: freeDetail(r.summary),
      traceFile,
      shrunk: null,
    };
  }
}

/** Runs a campaign will make, when known (for the progress bar). */
export function expectedRuns(spec: CampaignSpec): number | null {
  if (spec.runs === null) return null;
  if (!spec.shard) return spec.runs;
  let n = 0;
  for (let i = spec.shard.index - 1; i < spec.runs; i += spec.shard.count) n++;
  return n;
}

/**
 * Checks a spec the way the CLI checks its options, for library callers: dfs explores one
 * schedule tree, so every shard would run the same schedules; and a --log the mutant's
 * scenarios cannot use would never expose it.
 */
function checkSpec(spec: CampaignSpec): void {
  if (spec.shard && spec.mode === 'controlled' && spec.strategy === 'dfs') {
    throw new ConfigError('--shard', `${spec.shard.index}/${spec.shard.count}`, 'EINVAL', 'dfs explores one schedule tree; shard random or pct campaigns');
  }
  const req = spec.mutant === null ? null : spec.mode === 'controlled' ? spec.mutant.controlled : spec.mutant.free;
  const need = req ? (req.log ?? (req.harvester ? harvesterLogMode(req.harvester) : null)) : null;
  if (spec.log !== null && need !== null && need !== spec.log) {
    throw new ConfigError('--log', spec.log, 'EINVAL', `mutant ${spec.mutant!.name} is only exposed with --log ${need}`);
  }
}

/** A free run's first finding in words. */
export function freeDetail(s: RunSummary): string | null {
  const lost = s.lost[0];
  if (lost !== undefined) {
    return `${lost.reason === 'wrong-value' ? 'wrong value' : 'lost page'}: slot ${lost.slot} offset ${lost.offset}, written by vCPU ${lost.vcpu} in iteration ${lost.iteration}`;
  }
  if (s.mismatches[0] !== undefined) return `copy mismatch: slot ${s.mismatches[0].slot} offset ${s.mismatches[0].offset}`;
  if (s.error !== null) return s.error;
  if (s.kernelBugs > 0) return `${s.kernelBugs} kernel bug(s): an out-of-bounds rmap access in reset`;
  if (s.kernelWarnings > 0) return `${s.kernelWarnings} kernel warning(s)`;
  if (s.resetMismatches > 0) return `${s.resetMismatches} reset count mismatch(es)`;
  if (s.badEntries > 0) return `${s.badEntries} bad record(s)`;
  return null;
}

/** A controlled run's first finding in words. */
export function controlledDetail(r: ControlledRunResult): string | null {
  const u = r.userspace;
  if (u?.lost[0]) {
    const p = u.lost[0];
    return `${p.reason === 'wrong-value' ? 'wrong value' : 'lost page'}: offset ${p.offset}, written by vCPU ${p.vcpu} in iteration ${p.iteration}`;
  }
  if (u?.mismatches[0]) return `copy mismatch: offset ${u.mismatches[0].offset} (last written by vCPU ${u.mismatches[0].writer})`;
  if (u?.wedged) return u.wedged;
  if (r.kernelBugs > 0) return `${r.kernelBugs} kernel bug(s): an out-of-bounds rmap access in reset`;
  if (r.kernelWarnings > 0) return `${r.kernelWarnings} kernel warning(s): a push into a full ring`;
  if (u && u.badEntries > 0) return `${u.badEntries} bad ring entries`;
  if (u && u.resetMismatches > 0) return `${u.resetMismatches} reset count mismatches`;
  if (r.abortDetail) return r.abortDetail;
  return r.errors[0] ?? null;
}
