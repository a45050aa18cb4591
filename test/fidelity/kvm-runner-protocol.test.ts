/**
 * The line protocol to native/kvm-runner.c (src/fidelity/kvm-runner-protocol.ts): a scenario
 * compiled into commands, and the runner's answers and whole output turned into results. Pure:
 * no /dev/kvm needed.
 */
import { describe, expect, it } from 'vitest';
import { compileScenario, interpretOutput, parseAnswer } from '../../src/fidelity/kvm-runner-protocol.js';
import { parseScenario } from '../../src/fidelity/scenario.js';
import { BASE_SCENARIO } from './fixtures.js';

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

  it('compiles a scenario without a VM config, and more vCPUs than the base', () => {
    const s = parseScenario({ ...BASE_SCENARIO, vm: undefined, vcpus: 2, steps: [{ op: 'read', vcpu: 1, slot: 1, pages: [0, 1], exitEach: true }] });
    expect(compileScenario(s)).toEqual({
      setup: ['init 2 2', 'slot 1 1073741824 512 1', 'vcpu', 'vcpu'],
      steps: ['write 1 3 1 2 1073741824 1073745920'],
    });
  });

  it('rejects malformed answers', () => {
    const run = { op: 'run', vcpu: 0, stopOnIo: false } as const;
    expect(() => parseAnswer(run, 'ok halt')).toThrow('kvm engine: bad exit: ok halt');
    expect(() => parseAnswer(run, 'ok hlt 1')).toThrow('kvm engine: unexpected answer to run: ok hlt 1');
    expect(() => parseAnswer({ op: 'reset' }, 'err einval')).toThrow('kvm engine: bad runner answer: err einval');
    expect(() => parseAnswer({ op: 'reset' }, 'ok x')).toThrow('kvm engine: bad number in runner output: ok x');
    expect(() => parseAnswer({ op: 'reset' }, 'ok 9007199254740992')).toThrow('kvm engine: number too large in runner output');
    expect(() => parseAnswer({ op: 'checkExtension', cap: 'dirtyRing' }, 'ok 1.5')).toThrow('kvm engine: bad value: ok 1.5');
    expect(parseAnswer({ op: 'checkExtension', cap: 'dirtyRing' }, 'ok -1')).toEqual({ rc: 0, value: -1 });
    expect(parseAnswer({ op: 'readEntry', vcpu: 0, index: 1 }, 'ok 2 65537 9007199254740992'))
      .toEqual({ rc: 0, entry: { flags: 2, slot: 65537, offset: '9007199254740992' } });
    expect(parseAnswer({ op: 'createVcpu' }, 'ok')).toEqual({ rc: 0 });
  });
});

describe('interpretOutput (a whole run of the runner)', () => {
  const s = parseScenario(BASE_SCENARIO);
  const compiled = compileScenario(s);
  const setupOk = compiled.setup.map(() => 'ok');

  it('gives one result per step after a clean setup', () => {
    const out = [...setupOk, 'ok', 'ok dirty_ring_full', 'ok 1 1 0', 'ok 1', ''].join('\n');
    expect(interpretOutput(s, compiled, out, '')).toEqual([
      { rc: 0 }, { rc: 0, exit: 'dirty_ring_full' }, { rc: 0, entries: [{ slot: 1, offset: 0 }] }, { rc: 0, count: 1 },
    ]);
  });

  it('throws, naming the scenario and quoting stderr, when the output falls short or runs over', () => {
    expect(() => interpretOutput(s, compiled, 'ok\nerr EINVAL\n', 'bad ring\n'))
      .toThrow('kvm engine: scenario "base": setup command "cap 192 4096 0" failed: err EINVAL\nrunner stderr:\nbad ring');
    expect(() => interpretOutput(s, compiled, 'ok\n', '')).toThrow('kvm engine: scenario "base": runner stopped during setup (cap)');
    expect(() => interpretOutput(s, compiled, [...setupOk, 'ok', ''].join('\n'), ''))
      .toThrow('kvm engine: scenario "base": runner stopped before step 1 (run)');
    expect(() => interpretOutput(s, compiled, [...setupOk, 'ok', 'fatal vCPU 0 is gone', ''].join('\n'), ''))
      .toThrow('kvm engine: scenario "base": step 1 (run): kvm engine: runner failed at run: fatal vCPU 0 is gone');
    expect(() => interpretOutput(s, compiled, [...setupOk, 'ok', 'ok hlt', 'ok 0', 'ok 0', 'ok', ''].join('\n'), ''))
      .toThrow('kvm engine: scenario "base": runner printed 9 lines for 8 commands');
  });
});
