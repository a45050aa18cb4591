/**
 * The live view's configuration: what the controls edit, what the URL carries (so that a link
 * reproduces the run, seed included), and its translation into a harness RunConfig, validated by
 * the same function the CLI uses (every error names the parameter and the errno).
 */
import { MiB } from '../../base/units.js';
import { WORKLOAD_KINDS, type WorkloadKind } from '../../guest/workloads.js';
import { type RunConfig, validateRunConfig } from '../../harness/run-config.js';
import { MEMORY_MODELS, type MemoryModel } from '../../kernel/wmm/ordering.js';
import { LOG_MODES, type LogMode } from '../../userspace/log-collectors.js';
import { MUTANT_NAMES } from '../../userspace/known-bugs.js';
import { HARVESTER_IDS } from '../harvesters.js';

export interface LiveConfig {
  readonly log: LogMode;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly ringEntries: number;
  readonly workload: WorkloadKind;
  readonly deviceWriters: number;
  /** A mutant's CLI name, or '' for none. */
  readonly mutant: string;
  readonly seed: number;
  readonly harvester: string;
  readonly iterations: number;
  readonly intervalMs: number;
  /** For controlled runs (the stress campaign): the memory model of the modelled accesses. */
  readonly memoryModel: MemoryModel;
}

/** Small enough to watch: a 64 × 64 heatmap, rings that fill within an iteration. */
export const LIVE_DEFAULTS: LiveConfig = {
  log: 'ring',
  vcpus: 4,
  memoryMiB: 16,
  ringEntries: 512,
  workload: 'random',
  deviceWriters: 0,
  mutant: '',
  seed: 1,
  harvester: 'builtin',
  iterations: 20,
  intervalMs: 200,
  memoryModel: 'sc',
};

type Field = keyof LiveConfig;
const NUMERIC: readonly Field[] = ['vcpus', 'memoryMiB', 'ringEntries', 'deviceWriters', 'seed', 'iterations', 'intervalMs'];
const CHOICES: Partial<Record<Field, readonly string[]>> = {
  log: LOG_MODES,
  workload: WORKLOAD_KINDS,
  mutant: ['', ...Object.keys(MUTANT_NAMES)],
  harvester: HARVESTER_IDS,
  memoryModel: MEMORY_MODELS,
};

export function choicesOf(field: Field): readonly string[] | undefined {
  return CHOICES[field];
}

/**
 * The configuration a URL's query describes: unknown or malformed values fall back to the
 * default and are listed in `problems` (the page says so instead of failing).
 */
export function configFromQuery(query: URLSearchParams): { config: LiveConfig; problems: string[] } {
  const out: Record<string, unknown> = { ...LIVE_DEFAULTS };
  const problems: string[] = [];
  for (const field of Object.keys(LIVE_DEFAULTS) as Field[]) {
    const text = query.get(field);
    if (text === null) continue;
    const choices = CHOICES[field];
    if (NUMERIC.includes(field)) {
      const n = Number(text);
      if (text.trim() === '' || !Number.isSafeInteger(n)) problems.push(`${field}=${text}: not a whole number`);
      else out[field] = n;
    } else if (choices !== undefined && !choices.includes(text)) {
      problems.push(`${field}=${text}: expected one of ${choices.filter((c) => c !== '').join(', ')}`);
    } else {
      out[field] = text;
    }
  }
  return { config: out as unknown as LiveConfig, problems };
}

/** The query string that reproduces `config` (every field, so that later default changes do not alter the link). */
export function configToQuery(config: LiveConfig): string {
  const q = new URLSearchParams();
  for (const field of Object.keys(LIVE_DEFAULTS) as Field[]) q.set(field, String(config[field]));
  return q.toString();
}

/** The harness configuration of a live run; throws ConfigError naming the parameter. */
export function toRunConfig(c: LiveConfig): RunConfig {
  const mutantBits = c.mutant === '' ? 0 : (MUTANT_NAMES[c.mutant] ?? 0);
  return validateRunConfig({
    log: c.log,
    vcpus: c.vcpus,
    memoryBytes: c.memoryMiB * MiB,
    // A ring size only means something with rings (the CLI refuses one with bitmap logging).
    ...(c.log === 'ring' && { ringEntries: c.ringEntries }),
    workload: c.workload,
    deviceWriters: c.deviceWriters,
    mutants: mutantBits,
    seed: c.seed,
    iterations: c.iterations,
    intervalMs: c.intervalMs,
    // Collect often enough that the rings are seen filling and draining within one iteration.
    harvestIntervalMs: Math.max(1, Math.floor(c.intervalMs / 10)),
  });
}
