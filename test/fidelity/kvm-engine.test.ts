import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadExpected, loadScenario, runOnKernelAgainst, scenarioFiles } from '../../src/fidelity/suite.js';
import {
  buildKvmRunner, kvmAvailable, notComparableReason, probeKvmExecution, runScenarioOnKvm,
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

describe('which scenarios a host can check', () => {
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
