/**
 * Trace files of failing runs. A controlled run's file is a replayable schedule: the scenario,
 * the mutants, the choices, and the trace they produced (its hash, and the steps as text for
 * reading). A free run's file records the seed and the generated scenario: real threads do not
 * replay exactly, but the same seed runs the same configuration and perturbation again.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../base/config-error.js';
import { MUTANT_NAMES, mutantNames } from '../userspace/known-bugs.js';
import { type ControlledScenario, rosterOf, validateScenario } from './controlled/scenario.js';
import { type Roster, participantCount } from './controlled/control-steps.js';
import { isReadFromChoice, readFromIndex } from './controlled/choosers.js';
import { Step } from '../kernel/step-hook.js';
import { MAX_HISTORY, MIN_HISTORY } from '../kernel/wmm/model.js';
import { MEMORY_MODELS, type MemoryModel } from '../kernel/wmm/ordering.js';
import { DEFAULT_WMM_HISTORY } from './controlled/run-memory.js';
import { type TraceEntry, formatChoices, formatTrace, parseTraceLine, traceHash } from './controlled/trace.js';
import type { ControlledRunResult } from './controlled/engine.js';
import type { Explanation } from './controlled/explain.js';
import type { FreeScenario } from './free/free-scenario.js';
import type { RunSummary } from '../harness/run.js';
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

export function controlledScheduleFile(
  r: ControlledRunResult,
  strategy: string,
  outcome: OutcomeKind,
  outcomes: OutcomeKind[],
  shrunkFrom?: ControlledScheduleFile['shrunkFrom'],
): ControlledScheduleFile {
  return {
    format: SCHEDULE_FORMAT,
    mode: 'controlled',
    seed: r.seed,
    strategy,
    mutants: mutantNames(r.mutants),
    memoryModel: r.memoryModel,
    wmmHistory: r.wmmHistory,
    scenario: r.scenario,
    choices: r.choices,
    steps: r.steps,
    outcome,
    outcomes,
    traceHash: r.traceHash,
    schedule: formatChoices(r.choices, r.roster),
    trace: formatTrace(r.trace, r.roster),
    explanation: r.explanation,
    ...(shrunkFrom ? { shrunkFrom } : {}),
  };
}

/** A free run's file: its seed and generated scenario, and what the run found. */
export function freeTraceFile(scenario: FreeScenario, mutants: number, outcome: OutcomeKind, outcomes: OutcomeKind[], s: RunSummary): FreeTraceFile {
  return {
    format: SCHEDULE_FORMAT,
    mode: 'free',
    seed: scenario.seed,
    mutants: mutantNames(mutants),
    scenario,
    outcome,
    outcomes,
    findings: {
      lostPages: s.lostPages,
      wrongValues: s.wrongValues,
      copyMismatches: s.copyMismatches,
      resetMismatches: s.resetMismatches,
      badEntries: s.badEntries,
      kernelWarnings: s.kernelWarnings,
      kernelBugs: s.kernelBugs,
      lost: s.lost,
      mismatches: s.mismatches,
      error: s.error,
    },
  };
}

/** Trace files and reports alike: JSON, one space of indent, creating the directory. */
export function writeJsonFile(path: string, value: TraceFile | object): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 1)}\n`);
}

/** The controlled part of a schedule file, checked (files without a memory model ran under sc). */
function readControlledFile(o: Record<string, unknown>, where: string, bits: number): ControlledScheduleFile & { mutantBits: number } {
  const scenario = validateScenario(o['scenario'], where);
  const memoryModel = o['memoryModel'] ?? 'sc';
  if (!(MEMORY_MODELS as readonly unknown[]).includes(memoryModel)) {
    throw new ConfigError(`${where}: memoryModel`, String(memoryModel), 'EINVAL', `must be one of ${MEMORY_MODELS.join(', ')}`);
  }
  const wmmHistory = o['wmmHistory'] ?? DEFAULT_WMM_HISTORY;
  if (typeof wmmHistory !== 'number' || !Number.isInteger(wmmHistory) || wmmHistory < MIN_HISTORY || wmmHistory > MAX_HISTORY) {
    throw new ConfigError(`${where}: wmmHistory`, String(wmmHistory), 'EINVAL', `must be an integer in ${MIN_HISTORY}..${MAX_HISTORY}`);
  }
  const last = participantCount(rosterOf(scenario)) - 1;
  const lowest = memoryModel === 'sc' ? 0 : -wmmHistory;
  const choices = o['choices'];
  if (!Array.isArray(choices) || !choices.every((c) => Number.isInteger(c) && c >= lowest && c <= last)) {
    const what = lowest < 0 ? `participants 0..${last} and read-from decisions ${lowest}..-1` : `participants 0..${last}`;
    throw new ConfigError(`${where}: choices`, '…', 'EINVAL', `must be a list of ${what}`);
  }
  const recorded = readRecordedTrace(o, where, rosterOf(scenario), choices as number[]);
  return {
    ...(o as unknown as ControlledScheduleFile),
    memoryModel: memoryModel as MemoryModel,
    wmmHistory,
    scenario,
    choices: choices as number[],
    steps: recorded.lines.length,
    traceHash: recorded.hash,
    trace: recorded.lines,
    mutantBits: bits,
  };
}

/**
 * The recording's own consistency. A run records one trace step per decision, and a file holds
 * those decisions or a prefix of them (a shrunk schedule: after the prefix nobody is preempted),
 * so a choice past the trace is one the run never took, and each choice must be the move its
 * trace step shows (that participant; for a read-from decision, that store). The trace must hash
 * to traceHash: a replay compares its trace with both, so an edited trace[], hash or choice is
 * refused here rather than passing for what the run did.
 */
function readRecordedTrace(o: Record<string, unknown>, where: string, roster: Roster, choices: readonly number[]): { hash: string; lines: string[] } {
  const steps = o['steps'];
  const lines = o['trace'];
  const hash = o['traceHash'];
  if (!Array.isArray(lines)) throw new ConfigError(`${where}: trace`, '…', 'EINVAL', 'must be the list of trace lines');
  if (choices.length > lines.length) {
    throw new ConfigError(`${where}: choices`, '…', 'EINVAL', `${choices.length} choices for ${lines.length} trace steps: ${choices.length - lines.length} surplus choices that the recorded run never took`);
  }
  if (steps !== lines.length) throw new ConfigError(`${where}: steps`, String(steps), 'EINVAL', `must equal the number of trace steps (${lines.length})`);
  if (typeof hash !== 'string' || !/^[0-9a-f]{8}$/.test(hash)) throw new ConfigError(`${where}: traceHash`, String(hash), 'EINVAL', 'must be 8 hex digits');
  const entries: TraceEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const e = parseTraceLine(lines[i], i, roster);
    if (typeof e === 'string') throw new ConfigError(`${where}: trace[${i}]`, JSON.stringify(lines[i]), 'EINVAL', e);
    const c = choices[i];
    if (c !== undefined && !choiceMatches(c, e)) {
      throw new ConfigError(`${where}: choices[${i}]`, String(c), 'EINVAL', `the trace shows another move at step ${i} (${String(lines[i]).trim()})`);
    }
    entries.push(e);
  }
  const actual = traceHash(entries);
  if (actual !== hash) {
    throw new ConfigError(`${where}: trace`, '…', 'EINVAL', `the trace hashes to ${actual}, not to the recorded traceHash ${hash}: the trace or its hash was edited`);
  }
  return { hash, lines: lines as string[] };
}

/** A decision and the trace step it made: that participant moved, or that store was read. */
function choiceMatches(choice: number, [participant, step, , b]: TraceEntry): boolean {
  return isReadFromChoice(choice) ? step === Step.READ_FROM && b === readFromIndex(choice) : participant === choice && step !== Step.READ_FROM;
}

/** Read and check a trace file; errors name `--replay FILE` and the field, with EINVAL. */
export function readTraceFile(path: string): TraceFile & { mutantBits: number } {
  const where = `--replay ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new ConfigError('--replay', path, code === 'ENOENT' ? 'ENOENT' : 'EINVAL', `cannot read the file (${code ?? String(e)})`);
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ConfigError('--replay', path, 'EINVAL', 'not a JSON schedule file');
  }
  if (o['format'] !== SCHEDULE_FORMAT) throw new ConfigError(where, String(o['format']), 'EINVAL', `format must be ${SCHEDULE_FORMAT}`);
  const mutants = o['mutants'];
  if (!Array.isArray(mutants)) throw new ConfigError(`${where}: mutants`, String(mutants), 'EINVAL', 'must be a list of mutant names');
  let bits = 0;
  for (const m of mutants) {
    const bit = typeof m === 'string' ? MUTANT_NAMES[m] : undefined;
    if (bit === undefined) throw new ConfigError(`${where}: mutants`, String(m), 'EINVAL', 'unknown mutant');
    bits |= bit;
  }
  const seed = o['seed'];
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ConfigError(`${where}: seed`, String(seed), 'EINVAL', 'must be an integer in 0..4294967295');
  }
  if (o['mode'] === 'controlled') return readControlledFile(o, where, bits);
  if (o['mode'] === 'free') {
    const sc = o['scenario'] as FreeScenario | undefined;
    if (typeof sc !== 'object' || sc === null || typeof sc.config !== 'object') {
      throw new ConfigError(`${where}: scenario`, '…', 'EINVAL', 'must be a free-running scenario');
    }
    return { ...(o as unknown as FreeTraceFile), mutantBits: bits };
  }
  throw new ConfigError(`${where}: mode`, String(o['mode']), 'EINVAL', 'mode must be controlled or free');
}
