/**
 * Trace files of failing runs. A controlled run's file is a replayable schedule: the scenario,
 * the mutants, the choices, and the trace they produced (its hash, and the steps as text for
 * reading). A free run's file records the seed and the generated scenario: real threads do not
 * replay exactly, but the same seed runs the same configuration and perturbation again.
 */
// Namespace imports, used only when a file is written: the browser app loads this module (Vite
// stubs node: modules there, and a named import of the stub fails when the module loads).
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ConfigError } from '../base/config-error.js';
import { mutantNames } from '../userspace/known-bugs.js';
import { parseTraceFile } from './schedule-parse.js';
import { formatChoices, formatTrace } from './controlled/trace.js';
import type { ControlledRunResult } from './controlled/engine.js';
import type { FreeScenario } from './free/free-scenario.js';
import type { RunSummary } from '../harness/run.js';
import type { OutcomeKind } from './outcome.js';

import { SCHEDULE_FORMAT, type ControlledScheduleFile, type FreeTraceFile, type TraceFile } from './schedule-format.js';

export { SCHEDULE_FORMAT, type ControlledScheduleFile, type FreeTraceFile, type TraceFile } from './schedule-format.js';

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
  fs.mkdirSync(nodePath.dirname(path), { recursive: true });
  fs.writeFileSync(path, `${JSON.stringify(value, null, 1)}\n`);
}

/** Read and check a trace file; errors name `--replay FILE` and the field, with EINVAL. */
export function readTraceFile(path: string): TraceFile & { mutantBits: number } {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new ConfigError('--replay', path, code === 'ENOENT' ? 'ENOENT' : 'EINVAL', `cannot read the file (${code ?? String(e)})`);
  }
  return parseTraceFile(text, path);
}
