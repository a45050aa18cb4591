/**
 * What a stress campaign is asked to do: its mode and strategy, how many runs, its seed and
 * shard, the mutant it hunts, where failing runs' trace files go. The library's defaults, the
 * checks a spec must pass (the CLI makes the same), and the runs a spec will make.
 */
import { ConfigError } from '../base/config-error.js';
import { harvesterLogMode } from './harvesters/harvester-variants.js';
import type { LogMode } from '../userspace/log-collectors.js';
import { type Strategy, shardRefusal } from './controlled/strategies.js';
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import { DEFAULT_STALE_RATE } from './controlled/choosers.js';
import { DEFAULT_WMM_HISTORY } from './controlled/run-memory.js';
import type { Resetter, RingCap, ScenarioRequest } from './controlled/scenario.js';
import type { MutantProfile } from './mutant-catalog.js';
import type { StressMode } from './stress-mode.js';

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
  /** Controlled: steer new scenarios toward the edge states no run has reached yet. */
  readonly coverageGuided: boolean;
  /** Controlled: the memory model of the protocol's locations (free runs are the hardware's). */
  readonly memoryModel: MemoryModel;
  /** Weak models: stores kept per location. */
  readonly wmmHistory: number;
  /** Weak models, random strategy: the share of read-from decisions that read an older store. */
  readonly staleRate: number;
  /** Weak models, pct: loads per run that read an older store. */
  readonly staleDepth: number;
  /** Weak models, dfs: most loads per schedule that read an older store. */
  readonly staleBound: number;
  /** Controlled scenarios of --log ring: only this ring capability / this resetter (null: drawn). */
  readonly ringCap: RingCap | null;
  readonly resetter: Resetter | null;
  /** Free ring runs of the standard harvester: self-reap (true), the hand-off (false), drawn (null). */
  readonly selfReap: boolean | null;
  /** Free runs: guest memory sizes to draw from, in MiB (null: the small guests drawn by default). */
  readonly memoryMiB: readonly number[] | null;
  /** Controlled: further scenario constraints (under the mutant's and the options above). */
  readonly scenario: ScenarioRequest | null;
  /** A user's harvester (--harvester) in the collector's place: its module's file: URL and its log mode. */
  readonly userHarvester: UserHarvesterRef | null;
}

export interface UserHarvesterRef {
  readonly url: string;
  readonly name: string;
  readonly log: LogMode;
  /**
   * Threads of its own; 0: the harness's thread (free runs) or the userspace participant
   * (controlled); null: as its module says, and in free runs at least one thread of its own.
   */
  readonly threads: number | null;
}

/** Defaults shared by campaignSpec and the CLI's options. */
export const DEFAULT_CAMPAIGN_RUNS = 1000;
export const DEFAULT_PCT_DEPTH = 3;
export const DEFAULT_PREEMPTION_BOUND = 2;
export const DEFAULT_STALE_DEPTH = 1;
export const DEFAULT_STALE_BOUND = 1;

/** The seed of library campaigns: fixed, so that a test's campaign is the same every time. */
const LIBRARY_SEED = 1;

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
    seed: LIBRARY_SEED,
    shard: null,
    mutant: null,
    log: null,
    stopAtFirstForbidden: false,
    shrink: false,
    checkEveryRun: false,
    traceDir: null,
    coverageGuided: false,
    memoryModel: 'sc',
    wmmHistory: DEFAULT_WMM_HISTORY,
    staleRate: DEFAULT_STALE_RATE,
    staleDepth: DEFAULT_STALE_DEPTH,
    staleBound: DEFAULT_STALE_BOUND,
    ringCap: null,
    resetter: null,
    selfReap: null,
    memoryMiB: null,
    scenario: null,
    userHarvester: null,
    ...over,
  };
}

/**
 * The memory model a campaign runs under: a mutant that only a weak model can expose asks for
 * its model, unless the spec asked for another one explicitly (checkCampaignSpec refuses that).
 */
export function campaignMemoryModel(spec: CampaignSpec): MemoryModel {
  return spec.memoryModel === 'sc' && spec.mode === 'controlled' && spec.mutant?.memoryModel !== undefined ? spec.mutant.memoryModel : spec.memoryModel;
}

/** The campaign's seed for run `index`: consecutive seeds, wrapping at 2^32. */
export function runSeed(spec: CampaignSpec, index: number): number {
  return (spec.seed + index) >>> 0;
}

/** Whether run `index` is this spec's shard's (all are without a shard). */
export function inShard(spec: CampaignSpec, index: number): boolean {
  return !spec.shard || index % spec.shard.count === spec.shard.index - 1;
}

/** Runs a campaign will make, when known (for the progress bar). */
export function expectedRuns(spec: CampaignSpec): number | null {
  if (spec.runs === null) return null;
  if (!spec.shard) return spec.runs;
  let n = 0;
  for (let i = spec.shard.index - 1; i < spec.runs; i += spec.shard.count) n++;
  return n;
}

/** The log mode a mutant's scenarios need in `mode` (null: any). */
export function mutantLogMode(mutant: MutantProfile, mode: StressMode): LogMode | null {
  const req = mode === 'controlled' ? mutant.controlled : mutant.free;
  return req.log ?? (req.harvester ? harvesterLogMode(req.harvester) : null);
}

/**
 * Checks a spec the way the CLI checks its options, for library callers: a strategy that
 * cannot be sharded (every shard would run the same schedules), and a --log the mutant's
 * scenarios cannot use (it would never expose the mutant).
 */
export function checkCampaignSpec(spec: CampaignSpec): void {
  if (spec.mode === 'free' && spec.memoryModel !== 'sc') {
    throw new ConfigError('--memory-model', spec.memoryModel, 'EINVAL', 'free-running threads run on the real hardware\'s memory model; a weak model needs --mode controlled');
  }
  const needModel = spec.mode === 'controlled' ? spec.mutant?.memoryModel : undefined;
  if (needModel !== undefined && spec.memoryModel !== 'sc' && spec.memoryModel !== needModel) {
    throw new ConfigError('--memory-model', spec.memoryModel, 'EINVAL', `mutant ${spec.mutant!.name} is only exposed under --memory-model ${needModel}`);
  }
  const refusal = spec.mode === 'controlled' ? shardRefusal(spec.strategy) : null;
  if (spec.shard && refusal !== null) {
    throw new ConfigError('--shard', `${spec.shard.index}/${spec.shard.count}`, 'EINVAL', refusal);
  }
  if (spec.shard && expectedRuns(spec) === 0) {
    throw new ConfigError('--shard', `${spec.shard.index}/${spec.shard.count}`, 'EINVAL', `shard ${spec.shard.index} of ${spec.runs} runs has no run`);
  }
  if (spec.coverageGuided && (spec.mode !== 'controlled' || spec.strategy === 'dfs')) {
    throw new ConfigError('--coverage-guided', 'on', 'EINVAL', 'it steers the scenarios of random or pct controlled campaigns');
  }
  const user = spec.userHarvester;
  if (user !== null && spec.log !== null && spec.log !== user.log) {
    throw new ConfigError('--log', spec.log, 'EINVAL', `harvester ${user.name} drives --log ${user.log}`);
  }
  if (user !== null && spec.resetter === 'thread') {
    throw new ConfigError('--resetter', 'thread', 'EINVAL', 'the reset thread serves the built-in collector; a user harvester makes its own resets');
  }
  const need = spec.mutant === null ? null : mutantLogMode(spec.mutant, spec.mode);
  if (spec.log !== null && need !== null && need !== spec.log) {
    throw new ConfigError('--log', spec.log, 'EINVAL', `mutant ${spec.mutant!.name} is only exposed with --log ${need}`);
  }
}
