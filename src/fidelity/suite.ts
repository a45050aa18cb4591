/**
 * The scenario suite on disk and the comparison of the two engines, shared by the `replay` and
 * `conformance` commands and the tests. Node only (files, the native runner).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runScenarioOnEmulator } from './emulator-engine.js';
import { kvmAvailable, probeKvmExecution, projectRoot, runScenarioOnKvm } from './kvm-engine.js';
import { diffResults, isNotComparable, parseResults, parseScenario } from './scenario.js';
import type { Scenario, StepResult } from './scenario.js';

/** Where the checked-in suite lives, relative to the project root. */
const SUITE_DIR = join('test', 'scenarios');

export function defaultSuiteDir(): string {
  return join(projectRoot(), SUITE_DIR);
}

/** Scenario files of a directory (every `*.json` but `*.expected.json`), sorted by name. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.expected.json'))
    .sort();
}

/** `x.json` → `x.expected.json`. */
export function expectedPathOf(scenarioPath: string): string {
  return scenarioPath.replace(/\.json$/, '.expected.json');
}

export function loadScenario(path: string): Scenario {
  return parseScenario(JSON.parse(readFileSync(path, 'utf8')) as unknown);
}

/** The checked-in expectation of a scenario file, or undefined when there is none. */
export function loadExpected(scenarioPath: string): StepResult[] | undefined {
  const p = expectedPathOf(scenarioPath);
  if (!existsSync(p)) return undefined;
  return parseResults(JSON.parse(readFileSync(p, 'utf8')) as unknown);
}

/** What the real kernel said about a scenario, as a comparison needs it. */
export type KernelOutcome =
  | { kind: 'results'; results: StepResult[]; /** Runs it took (see runOnKernelAgainst). */ attempts?: number }
  | { kind: 'notComparable'; reason: string }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'failed'; reason: string };

export interface KvmHost {
  available: boolean;
  /** Why /dev/kvm cannot be used (when not available). */
  reason?: string;
  /** How the host's KVM executes the guest (when available). */
  execution?: 'native' | 'emulated';
}

let hostCache: KvmHost | undefined;

/**
 * Whether the real kernel can be used here, and how it runs guests. Probes once per process
 * (a failed probe too: probeKvmExecution caches only a success, and retrying would rebuild and
 * rerun the runner for every scenario).
 */
export function kvmHost(): KvmHost {
  hostCache ??= probeKvmHost();
  return hostCache;
}

function probeKvmHost(): KvmHost {
  const a = kvmAvailable();
  if (!a.ok) return { available: false, reason: a.reason };
  try {
    return { available: true, execution: probeKvmExecution() };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}

/** Runs a scenario on /dev/kvm; never throws: every outcome is a value. */
export async function runOnKernel(s: Scenario, host: KvmHost = kvmHost()): Promise<KernelOutcome> {
  if (!host.available) return { kind: 'unavailable', reason: host.reason ?? 'unknown' };
  try {
    const r = await runScenarioOnKvm(s);
    if (isNotComparable(r)) return { kind: 'notComparable', reason: r.notComparable };
    return { kind: 'results', results: r };
  } catch (e) {
    return { kind: 'failed', reason: (e as Error).message };
  }
}

/** Kernel runs a comparison may make before calling a difference real. */
export const KERNEL_ATTEMPTS = 3;

/**
 * Run on the kernel until its results equal `reference`, at most `attempts` times. The kernel
 * here is PVM: it emulates the guest and checks requests only between batches of emulated
 * instructions, and under host load a batch can end one instruction earlier, moving an exit (a
 * soft-full exit seen before the store's own I/O exit; docs/PROTOCOL.md, section 8). That order
 * is the host's timing, not something KVM promises; a difference that persists over every
 * attempt is a real one. The outcome says how many runs it took.
 */
export async function runOnKernelAgainst(
  s: Scenario,
  reference: readonly StepResult[],
  host: KvmHost = kvmHost(),
  attempts = KERNEL_ATTEMPTS,
): Promise<KernelOutcome> {
  let outcome: KernelOutcome = { kind: 'failed', reason: 'not run' };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    outcome = await runOnKernel(s, host);
    if (outcome.kind !== 'results') return outcome;
    outcome = { ...outcome, attempts: attempt };
    if (diffResults(outcome.results, reference, s.steps).length === 0) return outcome;
  }
  return outcome;
}

export interface Comparison {
  emulator: StepResult[];
  kernel: KernelOutcome;
  /** Step-by-step differences, "expected" = the kernel, "got" = the emulator (empty unless the kernel gave results). */
  differences: string[];
  /** True only when the kernel ran the scenario and every step agreed. */
  match: boolean;
}

/** Both engines on one scenario. The emulator's errors propagate (a broken scenario). */
export async function compareEngines(s: Scenario, host: KvmHost = kvmHost()): Promise<Comparison> {
  const emulator = runScenarioOnEmulator(s);
  const kernel = await runOnKernelAgainst(s, emulator, host);
  const differences = kernel.kind === 'results' ? diffResults(kernel.results, emulator, s.steps) : [];
  return { emulator, kernel, differences, match: kernel.kind === 'results' && differences.length === 0 };
}
