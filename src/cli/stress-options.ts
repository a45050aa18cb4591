/**
 * `dirtyring stress`'s options: parsed and checked up front, so that bad input exits 2 with one
 * line naming the parameter and the errno before any campaign starts.
 */
import { join, parse as parsePath, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import { checkOutputDir, checkOutputFile } from './output-paths.js';
import { autoShard, checkShardHasRuns, parseShard } from './shard-env.js';
import { type PlannedCampaign, presetPlan } from './stress-preset.js';
import { randomSeed, validateLogMode } from '../harness/run-config.js';
import { parseMemorySizes } from './stress-memory-option.js';
import { MUTANT_NAMES } from '../userspace/known-bugs.js';
import type { LogMode } from '../userspace/log-collectors.js';
import {
  DEFAULT_PCT_DEPTH,
  DEFAULT_PREEMPTION_BOUND,
  DEFAULT_STALE_BOUND,
  DEFAULT_STALE_DEPTH,
  type Shard,
  mutantLogMode,
} from '../stress/campaign-spec.js';
import { DEFAULT_STALE_RATE } from '../stress/controlled/choosers.js';
import { DEFAULT_WMM_HISTORY } from '../stress/controlled/run-memory.js';
import { RESETTERS, RING_CAPS, type Resetter, type RingCap } from '../stress/controlled/scenario.js';
import { MAX_HISTORY, MIN_HISTORY } from '../kernel/wmm/model.js';
import { MEMORY_MODELS, type MemoryModel } from '../kernel/wmm/ordering.js';
import { STRATEGIES, type Strategy } from '../stress/controlled/strategies.js';
import { type MutantProfile, allMutantProfiles, mutantProfile } from '../stress/mutant-catalog.js';
import { STRESS_MODES, type StressMode } from '../stress/stress-mode.js';

export interface StressOptions {
  readonly modes: StressMode[];
  readonly strategy: Strategy;
  readonly pctDepth: number;
  readonly preemptionBound: number;
  readonly runs: number | null;
  readonly timeBudgetMs: number | null;
  readonly mutants: MutantProfile[];
  readonly log: LogMode | null;
  readonly shard: Shard | null;
  readonly seed: number;
  readonly report: string | null;
  readonly junit: string | null;
  readonly traceDir: string;
  readonly replay: string | null;
  readonly printTrace: boolean;
  readonly shrink: boolean;
  readonly checkEveryRun: boolean;
  /** Controlled: steer new scenarios toward edge states not reached yet. */
  readonly coverageGuided: boolean;
  /** Fail (exit 1) a campaign that did not reach every edge state its mode can reach. */
  readonly minCoverage: boolean;
  readonly json: boolean;
  /** The memory model asked for (null: not given, sc). */
  readonly memoryModel: MemoryModel | null;
  readonly wmmHistory: number;
  readonly staleRate: number;
  readonly staleDepth: number;
  readonly staleBound: number;
  readonly ringCap: RingCap | null;
  readonly resetter: Resetter | null;
  /** Free ring runs of the standard harvester: self-reap on exit 31 or the hand-off (null: drawn). */
  readonly selfReap: boolean | null;
  /** --memory: free runs' guest memory sizes to draw from, in MiB (null: the default draw). */
  readonly memoryMiB: readonly number[] | null;
  /** Run the memory-model matrix (profile × ring capability × harvester) instead of a campaign. */
  readonly matrix: boolean;
  /** --preset: the campaigns to run, one after another (null: the modes above). */
  readonly plan: readonly PlannedCampaign[] | null;
  /** --harvester: a user's harvester module (loaded by the command), and --harvester-threads as given. */
  readonly harvester: string | null;
  readonly harvesterThreads: string | undefined;
  /** The command line, for the report. */
  readonly argv: readonly string[];
}

const OPTIONS = {
  runs: { type: 'string' },
  'time-budget': { type: 'string' },
  mode: { type: 'string' },
  strategy: { type: 'string' },
  'pct-depth': { type: 'string' },
  'preemption-bound': { type: 'string' },
  mutant: { type: 'string' },
  log: { type: 'string' },
  shard: { type: 'string' },
  seed: { type: 'string' },
  report: { type: 'string' },
  junit: { type: 'string' },
  'trace-dir': { type: 'string' },
  replay: { type: 'string' },
  trace: { type: 'boolean', default: false },
  'no-shrink': { type: 'boolean', default: false },
  'check-determinism': { type: 'boolean', default: false },
  'coverage-guided': { type: 'boolean', default: false },
  'min-coverage': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  'memory-model': { type: 'string' },
  'wmm-history': { type: 'string' },
  'stale-rate': { type: 'string' },
  'stale-depth': { type: 'string' },
  'stale-bound': { type: 'string' },
  'ring-cap': { type: 'string' },
  resetter: { type: 'string' },
  'self-reap': { type: 'string' },
  memory: { type: 'string' },
  matrix: { type: 'boolean', default: false },
  preset: { type: 'string' },
  harvester: { type: 'string' },
  'harvester-threads': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof readArgs>;

/** Options that shape a campaign; a replay takes everything from its trace file instead. */
const CAMPAIGN_ONLY = [
  'runs',
  'time-budget',
  'mode',
  'strategy',
  'pct-depth',
  'preemption-bound',
  'mutant',
  'log',
  'shard',
  'seed',
  'report',
  'junit',
  'trace-dir',
  'no-shrink',
  'check-determinism',
  'coverage-guided',
  'min-coverage',
  'wmm-history',
  'stale-rate',
  'stale-depth',
  'stale-bound',
  'ring-cap',
  'resetter',
  'self-reap',
  'memory',
  'harvester',
  'harvester-threads',
] as const;

/** Beyond these a campaign is a typing error, not a plan: PCT's depth, DFS's bound, the run count. */
const MAX_PCT_DEPTH = 100;
const MAX_PREEMPTION_BOUND = 100;
const MAX_RUNS = 1e9;
/** Seeds are u32: run k of a campaign uses seed + k, wrapping. */
const MAX_SEED = 0xffffffff;
/** Trace files go next to the report (in `<report name>-traces`), or here without one. */
const DEFAULT_TRACE_DIR = 'stress-traces';

const MS_PER_UNIT: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseStressOptions(argv: string[]): StressOptions | 'help' {
  const values = readArgs(argv);
  if (values.help) return 'help';
  checkReplayOptions(values);
  checkMatrixOptions(values);
  const mode = parseMode(values.mode);
  const strategy = parseStrategy(values.strategy, mode);
  const memoryModel = parseMemoryModel(values['memory-model'], mode);
  const log = values.log !== undefined ? validateLogMode(values.log) : null;
  const mutants = values.mutant !== undefined ? parseMutants(values.mutant, log, memoryModel) : [];
  const shard = values.shard !== undefined ? parseShard(values.shard === 'auto' ? autoShard() : values.shard, strategy) : null;
  const modes = campaignModes(mode, values.strategy !== undefined, memoryModel !== null && memoryModel !== 'sc', mutants.length > 0);
  const ringCap = choice('--ring-cap', values['ring-cap'], RING_CAPS);
  const resetter = choice('--resetter', values.resetter, RESETTERS);
  if ((ringCap !== null || resetter !== null) && log !== null && log !== 'ring') {
    throw new ConfigError(ringCap !== null ? '--ring-cap' : '--resetter', (ringCap ?? resetter)!, 'EINVAL', 'needs --log ring');
  }
  const selfReap = parseSelfReap(values['self-reap'], log, modes);
  const memoryMiB = parseMemorySizes(values.memory, modes, mutants.length > 0);
  if (values['check-determinism'] === true && modes.length === 1 && modes[0] === 'free') {
    throw new ConfigError('--check-determinism', 'on', 'EINVAL', 'free-running runs are not exactly repeatable; it needs --mode controlled');
  }
  checkCoverageOptions(values, modes, strategy, mutants.length > 0);
  const runs = values.runs !== undefined ? positiveInt('--runs', values.runs, 1, MAX_RUNS) : null;
  if (shard !== null) checkShardHasRuns(shard, runs, mutants, modes);
  const plan = presetPlan(values.preset, values, runs);
  const report = values.report ?? null;
  const traceDir = values['trace-dir'] ?? (report !== null ? join(parsePath(report).dir, `${parsePath(report).name}-traces`) : DEFAULT_TRACE_DIR);
  if (values.replay === undefined) checkOutputs(report, values.junit ?? null, traceDir);
  return {
    modes: plan !== null ? [...new Set(plan.map((c) => c.mode))] : modes,
    strategy,
    pctDepth: values['pct-depth'] !== undefined ? positiveInt('--pct-depth', values['pct-depth'], 1, MAX_PCT_DEPTH) : DEFAULT_PCT_DEPTH,
    preemptionBound:
      values['preemption-bound'] !== undefined ? positiveInt('--preemption-bound', values['preemption-bound'], 0, MAX_PREEMPTION_BOUND) : DEFAULT_PREEMPTION_BOUND,
    runs,
    timeBudgetMs: values['time-budget'] !== undefined ? parseDuration('--time-budget', values['time-budget']) : null,
    mutants,
    log,
    shard,
    seed: values.seed !== undefined ? positiveInt('--seed', values.seed, 0) : randomSeed(),
    report,
    junit: values.junit ?? null,
    traceDir,
    replay: values.replay ?? null,
    printTrace: values.trace === true,
    shrink: values['no-shrink'] !== true,
    checkEveryRun: values['check-determinism'] === true,
    coverageGuided: values['coverage-guided'] === true,
    minCoverage: values['min-coverage'] === true,
    json: values.json === true,
    memoryModel,
    ...parseWeakKnobs(values),
    ringCap,
    resetter,
    selfReap,
    memoryMiB,
    matrix: values.matrix === true,
    plan,
    harvester: values.harvester ?? null,
    harvesterThreads: values['harvester-threads'],
    argv,
  };
}

/** Every file and directory the campaign will write, checked before its first run. */
function checkOutputs(report: string | null, junit: string | null, traceDir: string): void {
  if (report !== null) checkOutputFile('--report', report);
  if (junit !== null) checkOutputFile('--junit', junit);
  if (report !== null && junit !== null && resolvePath(report) === resolvePath(junit)) {
    throw new ConfigError('--junit', junit, 'EINVAL', 'the same file as --report; one would overwrite the other');
  }
  checkOutputDir('--trace-dir', traceDir);
}

/** The matrix decides the mode, the models, the capabilities and the harvesters itself. */
const MATRIX_SETS = ['mode', 'strategy', 'mutant', 'log', 'shard', 'memory-model', 'ring-cap', 'resetter', 'self-reap', 'memory', 'replay'] as const;

function checkMatrixOptions(values: Values): void {
  if (values.matrix !== true) return;
  for (const name of MATRIX_SETS) {
    const v = values[name];
    if (v !== undefined) throw new ConfigError(`--${name}`, String(v), 'EINVAL', 'not used with --matrix (it runs every memory model, ring capability and harvester)');
  }
}

/** A memory model: sc, x86 or arm64; a weak one only for controlled runs. */
function parseMemoryModel(v: string | undefined, mode: StressMode | undefined): MemoryModel | null {
  const model = choice('--memory-model', v, MEMORY_MODELS);
  if (model !== null && model !== 'sc' && mode === 'free') {
    throw new ConfigError('--memory-model', model, 'EINVAL', 'free-running threads run on the real hardware\'s memory model; a weak model needs --mode controlled');
  }
  return model;
}

function parseWeakKnobs(values: Values): Pick<StressOptions, 'wmmHistory' | 'staleRate' | 'staleDepth' | 'staleBound'> {
  const rate = values['stale-rate'];
  let staleRate = DEFAULT_STALE_RATE;
  if (rate !== undefined) {
    staleRate = Number(rate);
    if (!/^\d*\.?\d+$/.test(rate.trim()) || staleRate > 1) throw new ConfigError('--stale-rate', rate, 'EINVAL', 'expected a share between 0 and 1');
  }
  return {
    wmmHistory: values['wmm-history'] !== undefined ? positiveInt('--wmm-history', values['wmm-history'], MIN_HISTORY, MAX_HISTORY) : DEFAULT_WMM_HISTORY,
    staleRate,
    staleDepth: values['stale-depth'] !== undefined ? positiveInt('--stale-depth', values['stale-depth'], 0, MAX_PCT_DEPTH) : DEFAULT_STALE_DEPTH,
    staleBound: values['stale-bound'] !== undefined ? positiveInt('--stale-bound', values['stale-bound'], 0, MAX_PREEMPTION_BOUND) : DEFAULT_STALE_BOUND,
  };
}

/** One of `allowed`, or null when not given. */
function choice<T extends string>(param: string, v: string | undefined, allowed: readonly T[]): T | null {
  if (v === undefined) return null;
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(param, v, 'EINVAL', `must be one of ${allowed.join(', ')}`);
  return v as T;
}

/** --self-reap on|off: the design of free ring runs (the controlled scheduler models the hand-off only). */
function parseSelfReap(v: string | undefined, log: LogMode | null, modes: readonly StressMode[]): boolean | null {
  const c = choice('--self-reap', v, ['on', 'off'] as const);
  if (c === null) return null;
  if (log !== null && log !== 'ring') throw new ConfigError('--self-reap', c, 'EINVAL', 'needs --log ring');
  if (!modes.includes('free')) throw new ConfigError('--self-reap', c, 'EINVAL', 'free runs only: controlled runs model the hand-off design');
  return c === 'on';
}

function readArgs(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
}

/**
 * A replay reruns what its trace file recorded, so the campaign options have nothing to act
 * on; rather than ignore one a user meant (a --seed, a --report), refuse it.
 */
function checkReplayOptions(values: Values): void {
  // --memory-model is accepted with --replay: it must be the model the file was recorded under.
  if (values.replay !== undefined) {
    for (const name of CAMPAIGN_ONLY) {
      const v = values[name];
      if (v !== undefined && v !== false) throw new ConfigError(`--${name}`, v === true ? 'on' : v, 'EINVAL', 'not used with --replay');
    }
  } else if (values.trace === true) {
    throw new ConfigError('--trace', 'on', 'EINVAL', '--trace needs --replay');
  }
}

/** Guided generation steers controlled random/pct scenarios; --min-coverage judges plain campaigns. */
function checkCoverageOptions(values: Values, modes: readonly StressMode[], strategy: Strategy, hasMutants: boolean): void {
  if (values['coverage-guided'] === true && (modes.includes('free') || strategy === 'dfs')) {
    throw new ConfigError('--coverage-guided', 'on', 'EINVAL', 'it steers the scenarios of controlled random or pct campaigns (--mode controlled)');
  }
  if (values['min-coverage'] === true && hasMutants) {
    throw new ConfigError('--min-coverage', 'on', 'EINVAL', 'mutant campaigns stop at their first catch; ask for coverage of a plain campaign');
  }
}

function parseMode(mode: string | undefined): StressMode | undefined {
  if (mode !== undefined && !(STRESS_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError('--mode', mode, 'EINVAL', `mode must be one of ${STRESS_MODES.join(', ')}`);
  }
  return mode as StressMode | undefined;
}

function parseStrategy(given: string | undefined, mode: StressMode | undefined): Strategy {
  const strategy = given ?? 'random';
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ConfigError('--strategy', strategy, 'EINVAL', `strategy must be one of ${STRATEGIES.join(', ')}`);
  }
  if (given !== undefined && mode === 'free') {
    throw new ConfigError('--strategy', strategy, 'EINVAL', 'scheduling strategies need --mode controlled');
  }
  return strategy as Strategy;
}

/** `--mutant a,b` or `all`, each once; every one must be exposable with the --log and --memory-model given. */
function parseMutants(value: string, log: LogMode | null, model: MemoryModel | null): MutantProfile[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new ConfigError('--mutant', value, 'EINVAL', 'expected a mutant name or all');
  const mutants: MutantProfile[] = [];
  const add = (p: MutantProfile): void => {
    if (!mutants.some((m) => m.name === p.name)) mutants.push(p);
  };
  for (const name of names) {
    if (name === 'all') {
      for (const p of allMutantProfiles()) add(p);
      continue;
    }
    const p = mutantProfile(name);
    if (!p) throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')}, all)`);
    add(p);
  }
  for (const p of mutants) {
    const need = mutantLogMode(p, 'controlled');
    if (log !== null && need !== null && need !== log) {
      throw new ConfigError('--log', log, 'EINVAL', `mutant ${p.name} is only exposed with --log ${need}`);
    }
    if (model !== null && model !== 'sc' && p.memoryModel !== undefined && p.memoryModel !== model) {
      throw new ConfigError('--memory-model', model, 'EINVAL', `mutant ${p.name} is only exposed under --memory-model ${p.memoryModel}`);
    }
  }
  return mutants;
}

/** The modes to run: the one asked for; with a weak memory model, controlled; with mutants, both; with a strategy, controlled; else free. */
function campaignModes(mode: StressMode | undefined, strategyGiven: boolean, weakModel: boolean, hasMutants: boolean): StressMode[] {
  if (mode !== undefined) return [mode];
  if (weakModel) return ['controlled'];
  if (hasMutants) return ['free', 'controlled'];
  return strategyGiven ? ['controlled'] : ['free'];
}

function positiveInt(param: string, v: string, min = 1, max = MAX_SEED): number {
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(param, v, 'EINVAL', 'expected a non-negative integer');
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(param, v, 'EINVAL', `must be between ${min} and ${max}`);
  return n;
}

/** "90s", "5m", "1h", "500ms", or plain seconds. */
function parseDuration(param: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new ConfigError(param, v, 'EINVAL', 'expected a duration like 60s, 5m or 500ms');
  const ms = Number(m[1]) * MS_PER_UNIT[m[2] ?? 's']!;
  if (ms <= 0) throw new ConfigError(param, v, 'EINVAL', 'must be longer than 0');
  return ms;
}
