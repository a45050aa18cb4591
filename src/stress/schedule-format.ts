/** The schedule file format: its version tag and the two kinds of file (schedule-file.ts writes them, schedule-parse.ts reads them). */
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import type { ControlledScenario } from './controlled/scenario.js';
import type { Explanation } from './controlled/explain.js';
import type { FreeScenario } from './free/free-scenario.js';
import type { OutcomeKind } from './outcome.js';

export const SCHEDULE_FORMAT = 'dirtyring-schedule/1';

export interface ControlledScheduleFile {
  readonly format: typeof SCHEDULE_FORMAT;
  readonly mode: 'controlled';
  readonly seed: number;
  /** How the choices were made (informational: a replay follows `choices`). */
  readonly strategy: string;
  readonly mutants: string[];
  /** The memory model the run was made under: a replay must use the same one (sc when absent). */
  readonly memoryModel: MemoryModel;
  /** Weak models: stores kept per location (they decide how many stores a load may read). */
  readonly wmmHistory: number;
  readonly scenario: ControlledScenario;
  /**
   * The decision at each step: who moved (0 = userspace, 1..vcpus = vCPU p − 1, then the
   * scenario's extra threads), or which store a load read (−1 − i; weak models only).
   */
  readonly choices: number[];
  readonly steps: number;
  readonly outcome: OutcomeKind;
  readonly outcomes: OutcomeKind[];
  readonly traceHash: string;
  /** The choices compactly, e.g. `U v0x3 v1 U`. */
  readonly schedule: string;
  /** The trace, one step per line. */
  readonly trace: string[];
  /** Why the per-step invariant broke, when it did (explain.ts): for reading and for the browser app. */
  readonly explanation?: Explanation | null;
  /** Set on a shrunk schedule: what it was shrunk from. */
  readonly shrunkFrom?: { readonly steps: number; readonly vcpus: number; readonly stores: number; readonly pages: number };
}

export interface FreeTraceFile {
  readonly format: typeof SCHEDULE_FORMAT;
  readonly mode: 'free';
  readonly seed: number;
  readonly mutants: string[];
  readonly scenario: FreeScenario;
  readonly outcome: OutcomeKind;
  readonly outcomes: OutcomeKind[];
  /** The run's findings (lost pages, mismatches, error). */
  readonly findings: unknown;
}

export type TraceFile = ControlledScheduleFile | FreeTraceFile;
