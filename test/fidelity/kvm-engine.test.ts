import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadExpected, loadScenario, runOnKernelAgainst, scenarioFiles } from '../../src/fidelity/suite.js';
import {
  buildKvmRunner, compileScenario, kvmAvailable, notComparableReason, parseAnswer, probeKvmExecution, runScenarioOnKvm,
} from '../../src/fidelity/kvm-engine.js';
import { diffResults, isNotComparable, parseScenario, serializeResults } from '../../src/fidelity/scenario.js';
import { BASE_SCENARIO as BASE } from './fixtures.js';

const DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));
const SCENARIO_FILES = scenarioFiles(DIR);
const KVM_TIMEOUT_MS = 60_000;

describe('the checked-in scenario suite', () => {
  it('has scenarios', () => {
    expect(SCENARIO_FILES.length).toBeGreaterThan(30);
  });
  it.each(SCENARIO_FILES)('%s parses and has one expectation per step', (file) => {
    const s = loadScenario(join(DIR, file));
    expect(loadExpected(join(DIR, file)), `${file}: no expectation file`).toHaveLength(s.steps.length);
  });
});

describe('compileScenario (the line protocol to native/kvm-runner.c)', () => {
  it('compiles setup and one command per step', () => {
    const s = parseScenario({
      name: 'protocol',
      path: 'emulated',
      vm: { ring: { bytes: '4294971392', acqRel: true }, manualProtect: 1 },
      memslots: [{ slot: 2, asId: 0, gpa: 2147483648, pages: 100, logDirty: true }],
      vcpus: 1,
      steps: [
        { op: 'write', vcpu: 0, slot: 2, pages: [1, 3], storesPerPage: 2, exitEach: true },
        { op: 'read', vcpu: 0, slot: 2, pages: [4] },
        { op: 'run', vcpu: 0, stopOnIo: true },
        { op: 'harvest', vcpu: 0, max: 3, flagsValue: 3 },
        { op: 'harvest', vcpu: 0 },
        { op: 'reset' },
        { op: 'getDirtyLog', slot: 2, asId: 1, nullBitmap: true },
        { op: 'clearDirtyLog', slot: 2, first: 64, num: 36, pages: [70, 99] },
        { op: 'setMemslot', slot: 2, logDirty: false },
        { op: 'setMemslot', slot: 2, delete: true },
        { op: 'enableCap', cap: 'manualProtect', flags: 3, capFlags: 1 },
        { op: 'createVcpu' },
        { op: 'writeEntry', vcpu: 0, index: 7, flags: 2, offset: '18446744073709551615' },
        { op: 'readEntry', vcpu: 1, index: 7 },
        { op: 'checkExtension', cap: 'dirtyRingWithBitmap' },
      ],
    });
    expect(compileScenario(s)).toEqual({
      setup: ['init 2 5', 'cap 223 4294971392 0', 'cap 168 1 0', 'slot 2 2147483648 100 1', 'vcpu'],
      steps: [
        'write 0 1 2 2 2147487744 2147495936',
        'write 0 2 1 1 2147500032',
        'run 0 1',
        'harvest 0 3 3',
        'harvest 0 4294967295 2',
        'reset',
        'get 65538 1',
        'clear 2 64 36 0 2 6 35',
        'slot 2 2147483648 100 0',
        'slot 2 2147483648 0 0',
        'cap 168 3 1',
        'vcpu',
        'wentry 0 7 2 - 18446744073709551615',
        'rentry 1 7',
        'check 225',
      ],
    });
  });

  it('parses the runner\'s answers', () => {
    const run = { op: 'run', vcpu: 0, stopOnIo: false } as const;
    expect(parseAnswer(run, 'ok dirty_ring_full')).toEqual({ rc: 0, exit: 'dirty_ring_full' });
    expect(parseAnswer(run, 'ok other 8')).toEqual({ rc: 0, exit: 'other:8' });
    expect(parseAnswer({ op: 'harvest', vcpu: 0, flagsValue: 2 }, 'ok 2 1 5 65537 18446744073709551615'))
      .toEqual({ rc: 0, entries: [{ slot: 1, offset: 5 }, { slot: 65537, offset: '18446744073709551615' }] });
    expect(parseAnswer({ op: 'reset' }, 'err EINVAL')).toEqual({ errno: 'EINVAL' });
    expect(parseAnswer({ op: 'getDirtyLog', slot: 1, asId: 0, nullBitmap: false }, 'ok 2 3 7')).toEqual({ rc: 0, pages: [3, 7] });
    expect(() => parseAnswer({ op: 'reset' }, 'fatal vCPU 3 does not exist')).toThrow(/runner failed at reset: fatal/);
    expect(() => parseAnswer({ op: 'getDirtyLog', slot: 1, asId: 0, nullBitmap: false }, 'ok 2 3')).toThrow(/unexpected answer/);
  });

  it('says when a scenario is not comparable on a host', () => {
    const fault = parseScenario({ ...BASE, path: 'fault' });
    const emulated = parseScenario(BASE);
    const noAccess = parseScenario({ ...BASE, steps: [{ op: 'reset' }] });
    expect(notComparableReason(fault, 'emulated')).toMatch(/^not comparable here: .*fault path/);
    expect(notComparableReason(parseScenario({ ...BASE, path: 'fault', steps: [] }), 'emulated')).toMatch(/^not comparable here/);
    expect(notComparableReason(fault, 'native')).toBeUndefined();
    expect(notComparableReason(emulated, 'emulated')).toBeUndefined();
    expect(notComparableReason(emulated, 'native')).toMatch(/^not comparable here: .*emulated-store path/);
    expect(notComparableReason(noAccess, 'native')).toBeUndefined();
  });
});

const avail = kvmAvailable();
const skipReason = avail.ok ? '' : avail.reason;
if (!avail.ok) console.warn(`[fidelity] real-kernel tests SKIPPED: ${skipReason}`);

describe.skipIf(!avail.ok)(`on the real /dev/kvm${avail.ok ? '' : ` — SKIPPED: ${skipReason}`}`, () => {
  it('builds the native runner', () => {
    expect(buildKvmRunner()).toMatch(/\.build\/native\/kvm-runner$/);
  }, KVM_TIMEOUT_MS);

  it('probes how this host executes the guest', () => {
    const mode = probeKvmExecution();
    expect(['native', 'emulated']).toContain(mode);
    console.info(`[fidelity] this host's KVM runs the guest: ${mode}`);
  }, KVM_TIMEOUT_MS);

  it.each(SCENARIO_FILES)('%s: the kernel gives the checked-in result', async (file) => {
    const s = loadScenario(join(DIR, file));
    const reason = notComparableReason(s, probeKvmExecution());
    if (reason !== undefined) {
      const result = await runScenarioOnKvm(s);
      expect(isNotComparable(result) && result.notComparable).toBe(reason);
      return;
    }
    const expected = loadExpected(join(DIR, file));
    if (expected === undefined) throw new Error(`${file}: no expectation file`);
    // The shared rerun policy (src/fidelity/suite.ts): PVM's host timing may move an exit once.
    const outcome = await runOnKernelAgainst(s, expected);
    if (outcome.kind !== 'results') throw new Error(`${file}: ${outcome.reason}`);
    if ((outcome.attempts ?? 1) > 1) console.warn(`[fidelity] ${file}: matched on kernel run ${outcome.attempts}`);
    const result = outcome.results;
    expect(diffResults(expected, result, s.steps)).toEqual([]);
    expect(serializeResults(result)).toBe(serializeResults(expected));
  }, KVM_TIMEOUT_MS);

  it('a ring op on a vCPU without a ring is a scenario error', async () => {
    const s = parseScenario({ ...BASE, vm: undefined, steps: [{ op: 'harvest', vcpu: 0 }] });
    await expect(runScenarioOnKvm(s)).rejects.toThrow(/has no dirty ring/);
  }, KVM_TIMEOUT_MS);

  it('a setup failure throws instead of producing results', async () => {
    const s = parseScenario({ ...BASE, vm: { ring: { bytes: 1000 } } });
    await expect(runScenarioOnKvm(s)).rejects.toThrow(/setup command "cap 192 1000 0" failed: err EINVAL/);
  }, KVM_TIMEOUT_MS);
});
