/**
 * The emulator engine against the checked-in suite (test/scenarios). The real kernel runs the
 * same suite in kvm-engine.test.ts (once: each scenario against its checked-in expectation,
 * which this file holds the emulator to).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ScenarioError, runScenarioOnEmulator } from '../../src/fidelity/emulator-engine.js';
import { compileScenario } from '../../src/fidelity/kvm-runner-protocol.js';
import { parseScenario, serializeResults } from '../../src/fidelity/scenario.js';
import type { OkResult, StepResult } from '../../src/fidelity/scenario.js';
import { loadExpected, loadScenario, scenarioFiles } from '../../src/fidelity/suite.js';

const DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));
const FILES = scenarioFiles(DIR);

function entriesOf(r: StepResult | undefined): OkResult['entries'] {
  if (!r || 'errno' in r) throw new Error(`not an ok result: ${JSON.stringify(r)}`);
  return r.entries;
}

describe('the emulator engine on the checked-in suite', () => {
  it('the suite is in test/scenarios, every scenario with an expectation', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(50);
    for (const f of FILES) expect(loadExpected(join(DIR, f)), f).toBeDefined();
  });

  it.each(FILES)('%s: the emulator gives the checked-in result', (file) => {
    const s = loadScenario(join(DIR, file));
    const expected = loadExpected(join(DIR, file))!;
    const results = runScenarioOnEmulator(s);
    expect(results).toHaveLength(s.steps.length);
    expect(serializeResults(results)).toBe(serializeResults(expected));
  });

  it('is deterministic: the same scenario twice gives byte-identical results', () => {
    const s = loadScenario(join(DIR, 'two-vcpus-soft-full.json'));
    expect(serializeResults(runScenarioOnEmulator(s))).toBe(serializeResults(runScenarioOnEmulator(s)));
  });
});

const SCENARIO = {
  name: 'hand-written',
  vm: { ring: { bytes: 4096, acqRel: false } },
  memslots: [{ slot: 3, asId: 0, gpa: 4294967296, pages: 32, logDirty: true }],
  vcpus: 1,
  steps: [
    { op: 'write', vcpu: 0, slot: 3, pages: [4, 4, 9], storesPerPage: 3 },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 0 },
    { op: 'reset' },
  ],
};

describe('the write path', () => {
  it('"emulated" logs every store; "fault" one entry per page until reset (each store its own instruction)', () => {
    const emulated = runScenarioOnEmulator(parseScenario({ ...SCENARIO, path: 'emulated' }));
    const fault = runScenarioOnEmulator(parseScenario({ ...SCENARIO, path: 'fault' }));
    const e = (offset: number) => ({ slot: 3, offset });
    expect(entriesOf(emulated[2])).toEqual([e(4), e(4), e(4), e(4), e(4), e(4), e(9), e(9), e(9)]);
    expect(entriesOf(fault[2])).toEqual([e(4), e(9)]);
    expect(fault[3]).toEqual({ rc: 0, count: 2 });
  });
});

describe('scenario errors are thrown, never returned as results', () => {
  it('a ring operation on a vCPU without a ring', () => {
    const s = parseScenario({ ...SCENARIO, vm: undefined, steps: [{ op: 'harvest', vcpu: 0 }] });
    expect(() => runScenarioOnEmulator(s)).toThrow(ScenarioError);
    expect(() => runScenarioOnEmulator(s)).toThrow(/vCPU 0 has no dirty ring/);
    const m = parseScenario({ ...SCENARIO, vm: undefined, steps: [{ op: 'mmapRing', vcpu: 0 }] });
    expect(() => runScenarioOnEmulator(m)).toThrow(/vCPU 0 has no dirty ring/);
  });

  it('a queue larger than the native runner\'s (2^26 accesses per vCPU), before allocating it', () => {
    const s = parseScenario({
      ...SCENARIO,
      memslots: [{ ...SCENARIO.memslots[0], pages: 128 }],
      steps: [{ op: 'write', vcpu: 0, slot: 3, pages: { from: 0, count: 128 }, storesPerPage: 1 << 20 }],
    });
    expect(() => runScenarioOnEmulator(s)).toThrow(/vCPU 0 would queue more than 67108864 accesses/);
  });

  it('a CLEAR page outside its bitmap, which only a scenario built without parseScenario can have, is an invariant violation', () => {
    const s = parseScenario({ ...SCENARIO, vm: undefined, steps: [{ op: 'clearDirtyLog', slot: 3, first: 0, num: 32, pages: [1] }] });
    const step = s.steps[0];
    if (step?.op !== 'clearDirtyLog') throw new Error('expected a clearDirtyLog step');
    step.pages = [64];
    expect(() => runScenarioOnEmulator(s)).toThrow(/dirtyring invariant violated: CLEAR bit 64 outside its 64-bit bitmap/);
    step.pages = [63];
    expect(runScenarioOnEmulator(s)).toEqual([{ rc: 0 }]);
  });

  it('a setup the kernel refuses names the step and the errno', () => {
    const s = parseScenario({ ...SCENARIO, vm: { ring: { bytes: 1000 } } });
    expect(() => runScenarioOnEmulator(s)).toThrow(/setup: enabling the dirty ring \(1000 bytes\) failed: EINVAL/);
  });
});

describe('the mmapRing step', () => {
  it('parses with defaults and compiles to the runner\'s mmap command', () => {
    const s = parseScenario({
      ...SCENARIO,
      path: 'emulated',
      steps: [
        { op: 'mmapRing', vcpu: 0 },
        { op: 'mmapRing', vcpu: 0, shared: false, write: false, exec: true },
      ],
    });
    expect(s.steps[0]).toEqual({ op: 'mmapRing', vcpu: 0, shared: true, write: true, exec: false });
    expect(compileScenario(s).steps).toEqual(['mmap 0 1 3', 'mmap 0 0 5']);
    expect(runScenarioOnEmulator(s)).toEqual([{ rc: 0 }, { errno: 'EPERM' }]);
  });

  it('rejects a misspelt field', () => {
    expect(() => parseScenario({ ...SCENARIO, steps: [{ op: 'mmapRing', vcpu: 0, private: true }] })).toThrow(
      /^scenario: steps\[0\]\.private: unknown field/,
    );
  });
});
