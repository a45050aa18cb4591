/**
 * A controlled schedule file is checked against itself before a replay: one trace line per
 * choice (no surplus choices), and a trace that hashes to the recorded traceHash.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Prng } from '../../../src/base/prng.js';
import { Step } from '../../../src/kernel/step-hook.js';
import { ControlStep } from '../../../src/stress/controlled/control-steps.js';
import { generateScenario, rosterOf } from '../../../src/stress/controlled/scenario.js';
import { type TraceEntry, formatTrace, parseTraceLine, traceHash } from '../../../src/stress/controlled/trace.js';
import { readTraceFile } from '../../../src/stress/schedule-file.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-schedule-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scenario = generateScenario(new Prng(3), { shape: 'micro', log: 'ring', vcpus: 1 });
const TRACE: TraceEntry[] = [
  [0, ControlStep.START, 0, 0],
  [1, ControlStep.START, 0, 0],
  [1, Step.PUSH_PUBLISH, 262149, -7],
  [0, ControlStep.USER_COLLECT, 1, 0],
];

function fileWith(over: Record<string, unknown>): string {
  const path = join(dir, `f${Math.random().toString(36).slice(2)}.json`);
  const base = {
    format: 'dirtyring-schedule/1', mode: 'controlled', seed: 1, strategy: 'random', mutants: [], memoryModel: 'sc', wmmHistory: 8,
    scenario, choices: TRACE.map((e) => e[0]), steps: TRACE.length, outcome: 'clean', outcomes: [],
    traceHash: traceHash(TRACE), schedule: '', trace: formatTrace(TRACE, rosterOf(scenario)),
  };
  writeFileSync(path, JSON.stringify({ ...base, ...over }));
  return path;
}

describe('schedule files', () => {
  it('a consistent recording reads back, its trace lines parse to the recorded entries', () => {
    const f = readTraceFile(fileWith({}));
    expect(f.mode).toBe('controlled');
    if (f.mode !== 'controlled') return;
    expect(f.trace.map((l, i) => parseTraceLine(l, i, rosterOf(scenario)))).toEqual(TRACE);
  });
  it('surplus choices are refused, naming how many the recorded run never took', () => {
    expect(() => readTraceFile(fileWith({ choices: [0, 1, 1, 0, 1, 0] }))).toThrow(/choices …: EINVAL, 6 choices for 4 trace steps: 2 surplus choices that the recorded run never took/);
  });
  it('a prefix of the choices is a recording (a shrunk schedule: after it nobody is preempted)', () => {
    expect(readTraceFile(fileWith({ choices: [0, 1] })).mode).toBe('controlled');
  });
  it('a choice that is not the move its trace step shows is refused', () => {
    expect(() => readTraceFile(fileWith({ choices: [0, 0, 1, 0] }))).toThrow(/choices\[1\] 0: EINVAL, the trace shows another move at step 1/);
    expect(() => readTraceFile(fileWith({ choices: [0, 1, 0] }))).toThrow(/choices\[2\] 0: EINVAL/);
  });
  it('an edited trace line is refused: it no longer hashes to traceHash', () => {
    const trace = formatTrace(TRACE, rosterOf(scenario));
    trace[2] = trace[2]!.replace('262149', '262150');
    expect(() => readTraceFile(fileWith({ trace }))).toThrow(/trace …: EINVAL, the trace hashes to [0-9a-f]{8}, not to the recorded traceHash/);
  });
  it('an edited hash, a mangled line, a wrong step count are refused', () => {
    expect(() => readTraceFile(fileWith({ traceHash: '00000000' }))).toThrow(/not to the recorded traceHash 00000000/);
    expect(() => readTraceFile(fileWith({ trace: ['nonsense', ...formatTrace(TRACE).slice(1)] }))).toThrow(/trace\[0\] "nonsense": EINVAL/);
    expect(() => readTraceFile(fileWith({ steps: 5 }))).toThrow(/steps 5: EINVAL/);
    const v7 = formatTrace(TRACE, rosterOf(scenario)).map((l) => l.replace(' v0 ', ' v7 '));
    expect(() => readTraceFile(fileWith({ trace: v7 }))).toThrow(/no participant v7 in this scenario/);
  });
});
