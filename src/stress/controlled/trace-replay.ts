/**
 * A schedule file replayed for a trace debugger: the same strict replay `dirtyring stress
 * --replay` does (each recorded choice must be possible, the trace must hash as recorded), with
 * a snapshot of the shared state before the first move and after every move. Platform-neutral:
 * the caller brings the participant pool (Node workers, or Web Workers in the browser app).
 */
import { ConfigError } from '../../base/config-error.js';
import { parseTraceFile } from '../schedule-parse.js';
import { outcomeClass, primaryOutcome, type OutcomeClass, type OutcomeKind } from '../outcome.js';
import { ReplayChooser } from './choosers.js';
import { classifyControlled } from './classify.js';
import { participantCount, participantName } from './control-steps.js';
import { dataSlots } from './controlled-vm.js';
import { runControlled } from './engine.js';
import type { Explanation } from './explain.js';
import type { InvariantViolation } from './invariant.js';
import type { ParticipantPool } from './pool.js';
import { describeScenario } from './scenario.js';
import { type StepSnapshot, takeSnapshot } from './step-snapshots.js';
import { formatTrace } from './trace.js';

export interface TraceReplay {
  readonly source: string;
  readonly seed: number;
  readonly mutants: string[];
  readonly memoryModel: string;
  readonly config: string;
  readonly participants: string[];
  readonly recordedHash: string;
  readonly traceHash: string;
  /** The replay hashes as recorded (and did not diverge). */
  readonly identical: boolean;
  readonly outcome: OutcomeKind;
  readonly cls: OutcomeClass;
  readonly recordedOutcome: string;
  readonly abort: string | null;
  readonly abortDetail: string | null;
  /** One line per step, as the CLI prints the trace. */
  readonly trace: string[];
  /** The participant of each step. */
  readonly movers: number[];
  readonly snapshots: StepSnapshot[];
  readonly invariant: InvariantViolation | null;
  readonly explanation: Explanation | null;
  readonly errors: string[];
}

/** The most steps a debugger replay keeps snapshots of (a schedule file is far shorter). */
const MAX_SNAPSHOTS = 20_000;

/** Replay a controlled schedule's text; throws ConfigError (naming the field) for a bad file. */
export async function replaySchedule(text: string, source: string, pool: ParticipantPool): Promise<TraceReplay> {
  const file = parseTraceFile(text, source);
  if (file.mode !== 'controlled') {
    throw new ConfigError(`--replay ${source}`, 'free', 'EINVAL', 'a free-running trace has no schedule to step through (real threads do not replay step by step); replay it with dirtyring stress --replay');
  }
  const s = file.scenario;
  const slot = { current: null as ReturnType<typeof dataSlots>[number] | null };
  const snapshots: StepSnapshot[] = [];
  const r = await runControlled(
    {
      scenario: s,
      mutants: file.mutantBits,
      seed: file.seed,
      memoryModel: file.memoryModel,
      wmmHistory: file.wmmHistory,
      chooser: new ReplayChooser(file.choices, true),
      onStep: (steps, vm) => {
        slot.current ??= dataSlots(vm, s)[0]!;
        if (snapshots.length < MAX_SNAPSHOTS) snapshots.push(takeSnapshot(steps, vm, s.vcpus, slot.current));
      },
    },
    pool,
  );
  const outcome = primaryOutcome(classifyControlled(r));
  return {
    source,
    seed: file.seed,
    mutants: file.mutants,
    memoryModel: file.memoryModel,
    config: describeScenario(s),
    participants: Array.from({ length: participantCount(r.roster) }, (_, p) => participantName(p, r.roster)),
    recordedHash: file.traceHash,
    traceHash: r.traceHash,
    identical: r.traceHash === file.traceHash && r.abort !== 'divergence',
    outcome,
    cls: outcomeClass(outcome),
    recordedOutcome: file.outcome,
    abort: r.abort,
    abortDetail: r.abortDetail,
    trace: formatTrace(r.trace, r.roster),
    movers: r.trace.map((e) => e[0]),
    snapshots,
    invariant: r.invariant,
    explanation: r.explanation,
    errors: r.errors,
  };
}
