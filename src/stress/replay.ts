/**
 * `--replay FILE`: run a trace file again. A controlled schedule is replayed strictly — each
 * recorded choice must be possible at its step, and the trace must hash as recorded — and then
 * a second time, to show the replay itself is deterministic. A free-running file reruns the
 * same seed's configuration and perturbation: the same run, but not the same interleaving.
 */
import { ReplayChooser } from './controlled/choosers.js';
import { classifyControlled } from './controlled/classify.js';
import { runControlled } from './controlled/engine.js';
import { describeScenario } from './controlled/scenario.js';
import { formatTrace } from './controlled/trace.js';
import { runFreeScenario } from './free/free-run.js';
import { describeFreeScenario } from './free/free-scenario.js';
import type { StressHarness } from './campaign.js';
import { controlledDetail } from './controlled/controlled-campaign.js';
import { freeDetail } from './free/free-campaign.js';
import { type OutcomeClass, type OutcomeKind, outcomeClass, primaryOutcome } from './outcome.js';
import { readTraceFile } from './schedule-file.js';
import { ConfigError } from '../base/config-error.js';
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import type { Explanation } from './controlled/explain.js';

export interface ReplayReport {
  readonly file: string;
  readonly mode: 'controlled' | 'free';
  readonly seed: number;
  readonly mutants: string[];
  /** Controlled: the memory model the schedule was recorded (and replayed) under. */
  readonly memoryModel: MemoryModel | null;
  readonly config: string;
  readonly outcome: OutcomeKind;
  readonly cls: OutcomeClass;
  readonly outcomes: OutcomeKind[];
  /** The recorded outcome, for comparison. */
  readonly recordedOutcome: OutcomeKind;
  /** Controlled: the replay's trace hash equals the recorded one, and a second replay's. */
  readonly identical: boolean | null;
  /** Controlled: the first step where the replayed trace is not the recorded one, null when none is. */
  readonly traceDifference: string | null;
  readonly deterministic: boolean | null;
  readonly recordedHash: string | null;
  readonly traceHash: string | null;
  readonly steps: number | null;
  readonly trace: string[] | null;
  readonly detail: string | null;
  /** Controlled: why the per-step invariant broke in the replay, if it did. */
  readonly explanation: Explanation | null;
}

/**
 * `memoryModel`: the model the caller asked for, if any; a controlled schedule recorded under
 * another one is refused (its read-from decisions mean nothing there).
 */
export async function replayTraceFile(path: string, harness: StressHarness, memoryModel?: MemoryModel): Promise<ReplayReport> {
  const file = readTraceFile(path);
  if (file.mode === 'controlled') {
    if (memoryModel !== undefined && memoryModel !== file.memoryModel) {
      throw new ConfigError(
        '--memory-model',
        memoryModel,
        'EINVAL',
        `${path} was recorded under --memory-model ${file.memoryModel}: its schedule (which store each load read) only replays under that model`,
      );
    }
    const input = { scenario: file.scenario, mutants: file.mutantBits, seed: file.seed, memoryModel: file.memoryModel, wmmHistory: file.wmmHistory };
    const chooser = new ReplayChooser(file.choices, true);
    const r = await runControlled({ ...input, chooser }, harness.participants);
    const again = await runControlled({ ...input, chooser: new ReplayChooser(file.choices, true) }, harness.participants);
    const outcomes = classifyControlled(r);
    const outcome = primaryOutcome(outcomes);
    const trace = formatTrace(r.trace, r.roster);
    const traceDifference = firstDifference(file.trace, trace, chooser.remaining);
    return {
      file: path,
      mode: 'controlled',
      seed: file.seed,
      mutants: file.mutants,
      memoryModel: file.memoryModel,
      config: describeScenario(file.scenario),
      outcome,
      cls: outcomeClass(outcome),
      outcomes,
      recordedOutcome: file.outcome,
      identical: r.traceHash === file.traceHash && r.abort !== 'divergence' && traceDifference === null,
      traceDifference,
      deterministic: again.traceHash === r.traceHash,
      recordedHash: file.traceHash,
      traceHash: r.traceHash,
      steps: r.steps,
      trace,
      detail: controlledDetail(r),
      explanation: r.explanation,
    };
  }
  if (memoryModel !== undefined && memoryModel !== 'sc') {
    throw new ConfigError('--memory-model', memoryModel, 'EINVAL', `${path} is a free-running file: real threads run on the hardware's memory model`);
  }
  const r = await runFreeScenario(file.scenario, file.mutantBits, harness.vcpuSpawn);
  const outcome = primaryOutcome(r.outcomes);
  return {
    file: path,
    mode: 'free',
    seed: file.seed,
    mutants: file.mutants,
    memoryModel: null,
    config: describeFreeScenario(file.scenario),
    outcome,
    cls: outcomeClass(outcome),
    outcomes: r.outcomes,
    recordedOutcome: file.outcome,
    identical: null,
    traceDifference: null,
    deterministic: null,
    recordedHash: null,
    traceHash: null,
    steps: null,
    trace: null,
    detail: freeDetail(r.summary),
    explanation: null,
  };
}

/** Where a replayed trace first departs from the recorded one, entry by entry (null: nowhere). */
function firstDifference(recorded: readonly string[], replayed: readonly string[], unusedChoices: number): string | null {
  const n = Math.min(recorded.length, replayed.length);
  for (let i = 0; i < n; i++) {
    if (recorded[i] !== replayed[i]) return `step ${i}: recorded "${recorded[i]!.trim()}", replayed "${replayed[i]!.trim()}"`;
  }
  if (recorded.length !== replayed.length) {
    return `the recording has ${recorded.length} steps, the replay ${replayed.length}${unusedChoices > 0 ? ` (${unusedChoices} choices never taken)` : ''}`;
  }
  return unusedChoices > 0 ? `${unusedChoices} choices never taken` : null;
}
