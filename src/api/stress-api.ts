/**
 * `stress()`: a campaign of many seeded runs (free-running threads, or the controlled scheduler)
 * with your harvester in the collector's place, as a function (Node). It returns the outcome
 * table and every failing run with what reproduces it: the seed, the schedule, the trace files.
 */
import { ConfigError } from '../base/config-error.js';
import { isHarvesterDefinition } from '../harvester/contract.js';
import { loadHarvester } from '../harvester/load-harvester.js';
import { MEMORY_MODELS, type MemoryModel } from '../kernel/wmm/ordering.js';
import { spawnNodeControlledWorker } from '../platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { spawnNodeHarvesterThread } from '../platform/node-harvester-host.js';
import { StressHarness } from '../stress/campaign.js';
import { type UserHarvesterRef, campaignSpec } from '../stress/campaign-spec.js';
import { parseHarvesterThreads } from '../harvester/harvester-threads.js';
import { STRATEGIES, type Strategy } from '../stress/controlled/strategies.js';
import { type OutcomeClass, type OutcomeKind, type OutcomeRow, isFailing } from '../stress/outcome.js';
import type { RunRecord, ShrunkRecord } from '../stress/run-record.js';
import { STRESS_MODES, type StressMode } from '../stress/stress-mode.js';
import { LOG_MODES, type LogMode } from '../userspace/log-collectors.js';
import { freeMemorySizes } from '../stress/free/free-memory.js';

export interface StressOptions {
  /** Your harvester's module: a path (from the working directory) or a file: URL. */
  readonly harvester?: string | URL;
  /**
   * Where the harvester runs: N threads of its own (1..8; free runs only), or 0 on the
   * harness's thread (free) / the userspace participant (controlled). Default: as its module
   * says; in free runs a harvester without `threads` runs on one thread of its own (bounded).
   */
  readonly harvesterThreads?: number;
  /** `controlled` (default): the scheduler picks every interleaving, replayable; `free`: real threads. */
  readonly mode?: StressMode;
  /** Controlled: random (default) | pct | dfs. */
  readonly strategy?: Strategy;
  /** Runs in the campaign (default 1000). */
  readonly runs?: number;
  /** The first run's seed (run i uses seed + i; default 1). */
  readonly seed?: number;
  /** Controlled: sc (default) | x86 | arm64. */
  readonly memoryModel?: MemoryModel;
  /** Without a harvester: only scenarios of this log mode. */
  readonly log?: LogMode;
  /**
   * Free runs: guest memory drawn from these sizes, as `dirtyring stress --memory` takes them
   * ('1GiB', '64MiB,1GiB'; whole MiB, at most 2047MiB). Default: small guests of 1–8 MiB.
   */
  readonly memory?: string;
  /** Where failing runs' schedule files go (default: none written). */
  readonly traceDir?: string | null;
  /** Shrink failing controlled runs (default true). */
  readonly shrink?: boolean;
  /** Called after every run. */
  readonly onRun?: (record: RunRecord, done: number) => void;
}

export interface StressFailure {
  readonly seed: number;
  readonly outcome: OutcomeKind;
  readonly outcomes: readonly OutcomeKind[];
  readonly config: string;
  readonly detail: string | null;
  /** Controlled: the run's choices, compactly. */
  readonly schedule: string | null;
  readonly traceFile: string | null;
  readonly shrunk: ShrunkRecord | null;
}

export interface StressResult {
  /** No forbidden and no error run. */
  readonly ok: boolean;
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly seed: number;
  readonly runs: number;
  readonly table: readonly OutcomeRow[];
  readonly classes: Readonly<Record<OutcomeClass, number>>;
  readonly failures: readonly StressFailure[];
  readonly elapsedMs: number;
}

const MAX_RUNS = 1e9;
const U32_MAX = 0xffffffff;

function oneOf<T extends string>(param: string, v: unknown, list: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (!(list as readonly unknown[]).includes(v)) throw new ConfigError(param, String(v), 'EINVAL', `must be one of ${list.join(', ')}`);
  return v as T;
}

function integer(param: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(param, String(v), 'EINVAL', `must be an integer in ${min}..${max}`);
  return v;
}

function memoryOption(v: unknown, mode: StressMode): readonly number[] | null {
  if (v === undefined) return null;
  if (typeof v !== 'string') throw new ConfigError('memory', String(v), 'EINVAL', "must be a size such as '1GiB', or a list such as '64MiB,1GiB'");
  return freeMemorySizes(v, [mode], 'memory');
}

async function harvesterRef(h: unknown, threadsOption: unknown): Promise<UserHarvesterRef | null> {
  if (h === undefined && threadsOption === undefined) return null;
  const threads = parseHarvesterThreads('harvesterThreads', threadsOption as number | undefined, h !== undefined);
  if (h === undefined) return null;
  if (isHarvesterDefinition(h)) {
    throw new ConfigError('harvester', h.name, 'EINVAL', "stress needs the harvester's module (a path or a file: URL): every run loads it in its own threads");
  }
  if (typeof h !== 'string' && !(h instanceof URL)) throw new ConfigError('harvester', String(h), 'EINVAL', 'must be a module path or a file: URL');
  const { url, definition } = await loadHarvester(h);
  return { url, name: definition.name, log: definition.log, threads: threads ?? definition.threads ?? null };
}

/** Run a campaign; bad options throw a ConfigError (nothing runs), findings are in the result. */
export async function stress(options: StressOptions = {}): Promise<StressResult> {
  const mode = oneOf('mode', options.mode, STRESS_MODES, 'controlled');
  const strategy = oneOf('strategy', options.strategy, STRATEGIES, 'random');
  const memoryModel = oneOf('memoryModel', options.memoryModel, MEMORY_MODELS, 'sc');
  const log = options.log === undefined ? null : oneOf('log', options.log, LOG_MODES, 'ring');
  const runs = integer('runs', options.runs, 1, MAX_RUNS, 1000);
  const seed = integer('seed', options.seed, 0, U32_MAX, 1);
  const memoryMiB = memoryOption(options.memory, mode);
  const userHarvester = await harvesterRef(options.harvester, options.harvesterThreads);
  const spec = campaignSpec(mode, {
    memoryMiB,
    strategy,
    memoryModel,
    log,
    runs,
    seed,
    userHarvester,
    traceDir: options.traceDir ?? null,
    shrink: options.shrink ?? true,
  });
  const harness = new StressHarness({ spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker, spawnHarvester: spawnNodeHarvesterThread });
  try {
    const r = await harness.runCampaign(spec, options.onRun && ((record, done) => options.onRun!(record, done)));
    return {
      ok: r.classes.forbidden === 0 && r.classes.error === 0,
      mode,
      strategy: r.strategy,
      seed,
      runs: r.runs,
      table: r.table,
      classes: r.classes,
      failures: r.records.filter((x) => isFailing(x.outcomes)).map(failure),
      elapsedMs: r.elapsedMs,
    };
  } finally {
    await harness.close();
  }
}

function failure(x: RunRecord): StressFailure {
  return { seed: x.seed, outcome: x.outcome, outcomes: x.outcomes, config: x.config, detail: x.detail, schedule: x.schedule, traceFile: x.traceFile, shrunk: x.shrunk };
}
