/** What a controlled run is given and what it returns (engine.ts runs it). */
import type { RunCoverage } from '../coverage/campaign-coverage.js';
import type { MemoryModel } from '../../kernel/wmm/ordering.js';
import type { Vm } from '../../kernel/vm.js';
import type { Chooser } from './choosers.js';
import type { Roster } from './control-steps.js';
import type { ControlledScenario } from './scenario.js';
import type { TraceEntry } from './trace.js';
import type { UserspaceReport } from './userspace-report.js';
import type { InvariantViolation } from './invariant.js';
import type { Explanation } from './explain.js';

export type AbortReason = 'deadlock' | 'step-limit' | 'stuck' | 'worker-lost' | 'divergence';

/**
 * The liveness bounds, the only clocks in a controlled run. A move takes microseconds, so
 * these are generous — a machine that stalls a thread for a second or two does not turn into a
 * harness error — yet short enough that a stuck run is classified, and its workers replaced,
 * well within a test's timeout.
 */
export interface ControlledLiveness {
  /** Every participant parked at its first step (run messages delivered to idle workers). */
  readonly startMs: number;
  /** A granted participant reaches its next step point. */
  readonly stepMs: number;
  /** Once the run ended or was abandoned, each worker returns its result. */
  readonly resultMs: number;
}

export const DEFAULT_LIVENESS: ControlledLiveness = { startMs: 10_000, stepMs: 10_000, resultMs: 5_000 };

export interface ControlledRunInput {
  readonly scenario: ControlledScenario;
  readonly mutants: number;
  /** The run's seed (labels the oracle's reports; the chooser is seeded by the caller). */
  readonly seed: number;
  readonly chooser: Chooser;
  /** Abandon the run after this many steps (default: STEP_LIMIT_FACTOR × the scenario's estimate, at least MIN_STEP_LIMIT). */
  readonly maxSteps?: number;
  /** Overrides of DEFAULT_LIVENESS. */
  readonly liveness?: Partial<ControlledLiveness>;
  /** The memory model of the modelled locations (default sc: none, every access sequentially consistent). */
  readonly memoryModel?: MemoryModel;
  /** Stores kept per location under a weak model (default DEFAULT_WMM_HISTORY). */
  readonly wmmHistory?: number;
  /**
   * Called before the first move (steps = 0) and after every move, with the moves made so far
   * and the run's VM, while every participant is parked: a debugger snapshots the shared state
   * here. It must only read.
   */
  readonly onStep?: (steps: number, vm: Vm) => void;
}

export interface ControlledRunResult {
  readonly seed: number;
  readonly scenario: ControlledScenario;
  readonly mutants: number;
  readonly memoryModel: MemoryModel;
  readonly wmmHistory: number;
  readonly roster: Roster;
  readonly steps: number;
  /**
   * The decision at each step: who moved (0 = userspace, 1..vcpus = vCPU p − 1, then the
   * roster's extras), or, under a weak model, which store a load read (−1 − i; −1 = newest).
   */
  readonly choices: number[];
  readonly trace: TraceEntry[];
  readonly traceHash: string;
  readonly abort: AbortReason | null;
  readonly abortDetail: string | null;
  readonly userspace: UserspaceReport | null;
  /** Participants that ended with an exception, or whose worker was lost. */
  readonly errors: string[];
  readonly kernelWarnings: number;
  readonly kernelBugs: number;
  readonly ringFullExits: number;
  /** Loads that read an older store than the newest (weak models). */
  readonly staleReads: number;
  /** The first step where a written page was neither recorded, nor protected, nor in an allowed window. */
  readonly invariant: InvariantViolation | null;
  /** Why (the chain of steps per participant), when the invariant broke. */
  readonly explanation: Explanation | null;
  /** The edge states the run reached, over every participant. */
  readonly coverage: RunCoverage;
  readonly elapsedMs: number;
}

/**
 * A liveness bound expired or a worker was lost: the harness failed, not the modelled code, so
 * the run says nothing about its scenario or its schedule.
 */
export function harnessLost(r: Pick<ControlledRunResult, 'abort'>): boolean {
  return r.abort === 'stuck' || r.abort === 'worker-lost';
}

