/**
 * Reading a trace file's text: the format, the mutants, the seed, and for a controlled schedule
 * its scenario, memory model and choices, each checked. No file system here: the CLI reads the
 * file (schedule-file.ts), the browser app gets the text from a dropped file or a URL.
 */
import { ConfigError } from '../base/config-error.js';
import { MUTANT_NAMES } from '../userspace/known-bugs.js';
import { rosterOf, validateScenario } from './controlled/scenario.js';
import { type Roster, participantCount } from './controlled/control-steps.js';
import { isReadFromChoice, readFromIndex } from './controlled/choosers.js';
import { Step } from '../kernel/step-hook.js';
import { type TraceEntry, parseTraceLine, traceHash } from './controlled/trace.js';
import { MAX_HISTORY, MIN_HISTORY } from '../kernel/wmm/model.js';
import { MEMORY_MODELS, type MemoryModel } from '../kernel/wmm/ordering.js';
import { DEFAULT_WMM_HISTORY } from './controlled/run-memory.js';
import type { FreeScenario } from './free/free-scenario.js';
import { type ControlledScheduleFile, type FreeTraceFile, SCHEDULE_FORMAT, type TraceFile } from './schedule-format.js';

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

/**
 * Check a trace file's text (`path`: where it came from, for the errors); errors name
 * `--replay FILE` and the field, with EINVAL.
 */
export function parseTraceFile(text: string, path: string): TraceFile & { mutantBits: number } {
  const where = `--replay ${path}`;
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
