/**
 * Reading a trace file's text: the format, the mutants, the seed, and for a controlled schedule
 * its scenario, memory model and choices, each checked. No file system here: the CLI reads the
 * file (schedule-file.ts), the browser app gets the text from a dropped file or a URL.
 */
import { ConfigError } from '../base/config-error.js';
import { MUTANT_NAMES } from '../userspace/known-bugs.js';
import { rosterOf, validateScenario } from './controlled/scenario.js';
import { participantCount } from './controlled/control-steps.js';
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
  return { ...(o as unknown as ControlledScheduleFile), memoryModel: memoryModel as MemoryModel, wmmHistory, scenario, choices: choices as number[], mutantBits: bits };
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
