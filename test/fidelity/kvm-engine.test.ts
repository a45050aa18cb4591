import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadExpected, loadScenario, runOnKernelAgainst, scenarioFiles } from '../../src/fidelity/suite.js';
import {
  buildKvmRunner, compileScenario, kvmAvailable, notComparableReason, parseAnswer, probeKvmExecution, runScenarioOnKvm,
} from '../../src/fidelity/kvm-engine.js';
import {
  diffResults, isNotComparable, parseResults, parseScenario, serializeResults,
} from '../../src/fidelity/scenario.js';
import type { StepResult } from '../../src/fidelity/scenario.js';

const DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));
const SCENARIO_FILES = scenarioFiles(DIR);
const KVM_TIMEOUT_MS = 60_000;

const BASE = {
  name: 'base',
  path: 'emulated',
  vm: { ring: { bytes: 4096, acqRel: false }, manualProtect: 0 },
  memslots: [{ slot: 1, asId: 0, gpa: 1073741824, pages: 512, logDirty: true }],
  vcpus: 1,
  steps: [
    { op: 'write', vcpu: 0, slot: 1, pages: [0, 1, 2], storesPerPage: 1, exitEach: true },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 0, max: 10 },
    { op: 'reset' },
  ],
};

type Base = typeof BASE & Record<string, unknown>;

/** BASE with `edit` applied to a deep copy. */
function variant(edit: (s: Base) => void): unknown {
  const s = structuredClone(BASE) as Base;
  edit(s);
  return s;
}

function step(i: number, s: { steps: unknown[] }): Record<string, unknown> {
  return s.steps[i] as Record<string, unknown>;
}

describe('parseScenario', () => {
  it('accepts the example of issue 7 and normalises it', () => {
    const s = parseScenario({
      name: 'soft-full at 192 of 256',
      vm: { ring: { bytes: 4096, acqRel: false }, manualProtect: 0 },
      memslots: [{ slot: 1, asId: 0, gpa: 1073741824, pages: 512, logDirty: true }],
      vcpus: 1,
      steps: [
        { op: 'write', vcpu: 0, slot: 1, pages: [0, 1, 2], storesPerPage: 1, exitEach: true },
        { op: 'run', vcpu: 0 },
        { op: 'harvest', vcpu: 0, max: 10 },
        { op: 'reset' },
        { op: 'getDirtyLog', slot: 1 },
        { op: 'clearDirtyLog', slot: 1, first: 0, num: 64, pages: [3, 5] },
        { op: 'setMemslot', slot: 1, logDirty: false },
        { op: 'enableCap', cap: 'dirtyRing', bytes: 8192 },
        { op: 'createVcpu' },
      ],
    });
    expect(s.path).toBe('fault');
    expect(s.vm?.ring).toEqual({ bytes: 4096n, acqRel: false });
    expect(s.steps[2]).toEqual({ op: 'harvest', vcpu: 0, max: 10, flagsValue: 2 });
    expect(s.steps[7]).toEqual({ op: 'enableCap', cap: 'dirtyRing', bytes: 8192n, capFlags: 0 });
  });

  it('expands page ranges and takes 64-bit values as decimal strings', () => {
    const s = parseScenario(variant((x) => {
      step(0, x).pages = { from: 5, count: 3 };
      x.steps.push({ op: 'writeEntry', vcpu: 0, index: 1, offset: '18446744073709551615' } as never);
      x.vm.ring.bytes = '4294971392' as unknown as number;
    }));
    expect(s.steps[0]).toMatchObject({ op: 'write', pages: [5, 6, 7] });
    expect(s.steps[4]).toEqual({ op: 'writeEntry', vcpu: 0, index: 1, offset: 18446744073709551615n });
    expect(s.vm?.ring?.bytes).toBe(4294971392n);
  });

  const bad: [string, (s: Base) => void, RegExp][] = [
    ['a missing name', (s) => { delete (s as Record<string, unknown>).name; }, /^scenario: name: /],
    ['an unknown top-level field', (s) => { s.extra = 1; }, /^scenario: extra: unknown field/],
    ['a bad path', (s) => { s.path = 'mmu'; }, /^scenario: path: /],
    ['a non-integer ring size', (s) => { s.vm.ring.bytes = 4096.5; }, /^scenario: vm\.ring\.bytes: /],
    ['a ring size in hex', (s) => { s.vm.ring.bytes = '0x1000' as unknown as number; }, /^scenario: vm\.ring\.bytes: /],
    ['a ring size beyond 64 bits', (s) => { s.vm.ring.bytes = '18446744073709551616' as unknown as number; }, /^scenario: vm\.ring\.bytes: does not fit/],
    ['acqRel not a boolean', (s) => { s.vm.ring.acqRel = 'yes' as unknown as boolean; }, /^scenario: vm\.ring\.acqRel: /],
    ['a memslot in the runner\'s memory', (s) => { s.memslots[0]!.gpa = 4096; }, /^scenario: memslots\[0\]\.gpa: /],
    ['an unaligned memslot', (s) => { s.memslots[0]!.gpa = 1073741824 + 100; }, /^scenario: memslots\[0\]\.gpa: must be a multiple/],
    ['the runner\'s slot id', (s) => { s.memslots[0]!.slot = 32763; }, /^scenario: memslots\[0\]\.slot: 32763 is reserved/],
    ['overlapping memslots', (s) => { s.memslots.push({ slot: 2, asId: 0, gpa: 1073741824 + 4096, pages: 1, logDirty: true }); }, /^scenario: memslots\[1\]\.gpa: overlaps slot 1/],
    ['a memslot without logDirty', (s) => { delete (s.memslots[0] as Partial<typeof s.memslots[0]>).logDirty; }, /^scenario: memslots\[0\]\.logDirty: /],
    ['steps not an array', (s) => { (s as Record<string, unknown>).steps = {}; }, /^scenario: steps: expected an array/],
    ['an unknown op', (s) => { step(1, s).op = 'runn'; }, /^scenario: steps\[1\]\.op: unknown op "runn"/],
    ['a misspelt step field', (s) => { step(0, s).storePerPage = 2; }, /^scenario: steps\[0\]\.storePerPage: unknown field/],
    ['a write to an undeclared slot', (s) => { step(0, s).slot = 9; }, /^scenario: steps\[0\]\.slot: slot 9 \(asId 0\) is not declared/],
    ['a page beyond the slot', (s) => { step(0, s).pages = [0, 512]; }, /^scenario: steps\[0\]\.pages\[1\]: 512 is out of range/],
    ['a page range beyond the slot', (s) => { step(0, s).pages = { from: 500, count: 13 }; }, /^scenario: steps\[0\]\.pages\.count: /],
    ['a vCPU that cannot exist', (s) => { step(1, s).vcpu = 1; }, /^scenario: steps\[1\]\.vcpu: vCPU 1 cannot exist/],
    ['storesPerPage 0', (s) => { step(0, s).storesPerPage = 0; }, /^scenario: steps\[0\]\.storesPerPage: 0 is out of range/],
    ['a negative harvest max', (s) => { step(2, s).max = -1; }, /^scenario: steps\[2\]\.max: /],
    ['an unknown cap', (s) => { s.steps.push({ op: 'enableCap', cap: 'dirtyBitmap', bytes: 1 } as never); }, /^scenario: steps\[4\]\.cap: expected one of/],
    ['a ring cap with flags', (s) => { s.steps.push({ op: 'enableCap', cap: 'dirtyRing', flags: 1 } as never); }, /^scenario: steps\[4\]\.flags: dirtyRing takes "bytes"/],
    ['manual protect without flags', (s) => { s.steps.push({ op: 'enableCap', cap: 'manualProtect' } as never); }, /^scenario: steps\[4\]\.flags: /],
    ['a CLEAR page outside the bitmap', (s) => { s.steps.push({ op: 'clearDirtyLog', slot: 1, first: 64, num: 36, pages: [63] } as never); }, /^scenario: steps\[4\]\.pages\[0\]: page 63 is outside/],
    ['an empty writeEntry', (s) => { s.steps.push({ op: 'writeEntry', vcpu: 0, index: 3 } as never); }, /^scenario: steps\[4\]: writeEntry needs/],
    ['setMemslot on an undeclared slot', (s) => { s.steps.push({ op: 'setMemslot', slot: 3, logDirty: true } as never); }, /^scenario: steps\[4\]\.slot: slot 3/],
    ['setMemslot without logDirty', (s) => { s.steps.push({ op: 'setMemslot', slot: 1 } as never); }, /^scenario: steps\[4\]\.logDirty: /],
  ];
  it.each(bad)('rejects %s, naming the field', (_what, edit, message) => {
    expect(() => parseScenario(variant(edit))).toThrow(message);
  });

  it('rejects a non-object', () => {
    expect(() => parseScenario([])).toThrow(/^scenario: \(root\): expected an object/);
  });
});

describe('results', () => {
  it('serialise canonically, whatever the key order', () => {
    const a: StepResult[] = [{ rc: 0, entries: [{ offset: 5, slot: 1 } as never], exit: 'hlt' }, { errno: 'EINVAL' }];
    const text = serializeResults(a);
    expect(text).toBe('[\n  {"rc":0,"exit":"hlt","entries":[{"slot":1,"offset":5}]},\n  {"errno":"EINVAL"}\n]\n');
    expect(parseResults(JSON.parse(text))).toEqual(a);
    expect(serializeResults(parseResults(JSON.parse(text)))).toBe(text);
  });

  it('diff names the differing steps', () => {
    expect(diffResults([{ rc: 0, count: 2 }, { rc: 0 }], [{ rc: 0, count: 3 }, { rc: 0 }])).toEqual([
      'step 0: expected {"rc":0,"count":2}, got {"rc":0,"count":3}',
    ]);
  });

  it('parseResults rejects malformed expectations', () => {
    expect(() => parseResults([{ rc: 1 }])).toThrow(/results\[0\]\.rc/);
    expect(() => parseResults([{ rc: 0, exit: 'halt' }])).toThrow(/results\[0\]\.exit/);
    expect(() => parseResults([{ rc: 0, entries: [{ slot: 1, offset: '5' }] }])).toThrow(/results\[0\]\.entries\[0\]\.offset/);
  });
});

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
