/**
 * The scenario format (src/fidelity/scenario.ts and ./scenario/): parsing, normalising and the
 * exact error of every malformed input. The messages are the CLI's output (`dirtyring replay`
 * prints them after the errno), so they are compared in full.
 */
import { describe, expect, it } from 'vitest';
import { diffResults, parseResults, parseScenario, serializeResults } from '../../src/fidelity/scenario.js';
import type { StepResult } from '../../src/fidelity/scenario.js';
import { BASE_SCENARIO, DELETE, edited, stepOf, variant, withSteps } from './fixtures.js';

describe('parseScenario', () => {
  it('normalises a scenario with every kind of setup and step', () => {
    const s = parseScenario({
      ...BASE_SCENARIO,
      name: 'soft-full at 192 of 256',
      path: undefined,
      steps: [
        ...BASE_SCENARIO.steps,
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
      stepOf(x, 0).pages = { from: 5, count: 3 };
      x.steps.push({ op: 'writeEntry', vcpu: 0, index: 1, offset: '18446744073709551615' } as never);
      x.vm.ring.bytes = '4294971392' as unknown as number;
    }));
    expect(s.steps[0]).toMatchObject({ op: 'write', pages: [5, 6, 7] });
    expect(s.steps[4]).toEqual({ op: 'writeEntry', vcpu: 0, index: 1, offset: 18446744073709551615n });
    expect(s.vm?.ring?.bytes).toBe(4294971392n);
  });

  it('fills in every default, op by op', () => {
    const s = parseScenario(withSteps(
      { op: 'read', vcpu: 0, slot: 1, pages: { from: 3, count: 2 }, note: 'a note no engine reads' },
      { op: 'harvest', vcpu: 0 },
      { op: 'getDirtyLog', slot: 40000, asId: 3 },
      { op: 'clearDirtyLog', slot: 1, first: 0, num: 0 },
      { op: 'setMemslot', slot: 1, delete: true },
      { op: 'enableCap', cap: 'dirtyRingWithBitmap' },
      { op: 'enableCap', cap: 'dirtyRingWithBitmap', flags: 7, capFlags: 1 },
      { op: 'createVcpu' },
      { op: 'writeEntry', vcpu: 1, index: 4294967295, slot: 0 },
      { op: 'mmapRing', vcpu: 1 },
    ));
    expect(s.steps.slice(4)).toEqual([
      { op: 'read', vcpu: 0, slot: 1, asId: 0, pages: [3, 4], exitEach: false },
      { op: 'harvest', vcpu: 0, flagsValue: 2 },
      { op: 'getDirtyLog', slot: 40000, asId: 3, nullBitmap: false },
      { op: 'clearDirtyLog', slot: 1, asId: 0, first: 0, num: 0, pages: [], nullBitmap: false },
      { op: 'setMemslot', slot: 1, asId: 0, logDirty: false, delete: true },
      { op: 'enableCap', cap: 'dirtyRingWithBitmap', capFlags: 0 },
      { op: 'enableCap', cap: 'dirtyRingWithBitmap', flags: 7, capFlags: 1 },
      { op: 'createVcpu' },
      { op: 'writeEntry', vcpu: 1, index: 4294967295, slot: 0 },
      { op: 'mmapRing', vcpu: 1, shared: true, write: true, exec: false },
    ]);
    expect(parseScenario({ name: 'x', description: 'd', vm: {}, steps: [] })).toEqual({
      name: 'x', description: 'd', path: 'fault', vm: { manualProtect: 0 }, memslots: [], vcpus: 0, steps: [],
    });
  });

  const bad: [string, unknown, string][] = [
    ['root array', [], 'scenario: (root): expected an object'],
    ['root null', null, 'scenario: (root): expected an object'],
    ['unknown top', edited(['extra', 1]), 'scenario: extra: unknown field (allowed: name, description, path, vm, memslots, vcpus, steps)'],
    ['no name', edited(['name', DELETE]), 'scenario: name: expected a non-empty string'],
    ['empty name', edited(['name', '']), 'scenario: name: expected a non-empty string'],
    ['description number', edited(['description', 3]), 'scenario: description: expected a non-empty string'],
    ['path bad', edited(['path', 'mmu']), 'scenario: path: expected "fault" or "emulated", got "mmu"'],
    ['vm not object', edited(['vm', 3]), 'scenario: vm: expected an object'],
    ['vm unknown', edited(['vm.foo', 1]), 'scenario: vm.foo: unknown field (allowed: ring, manualProtect)'],
    ['vm manualProtect neg', edited(['vm.manualProtect', -1]), 'scenario: vm.manualProtect: -1 is out of range [0, 9007199254740991]'],
    ['vm manualProtect float', edited(['vm.manualProtect', 1.5]), 'scenario: vm.manualProtect: expected an integer, got 1.5'],
    ['ring not object', edited(['vm.ring', []]), 'scenario: vm.ring: expected an object'],
    ['ring unknown', edited(['vm.ring.x', 1]), 'scenario: vm.ring.x: unknown field (allowed: bytes, acqRel)'],
    ['ring bytes float', edited(['vm.ring.bytes', 4096.5]), 'scenario: vm.ring.bytes: expected a non-negative safe integer or a decimal string, got 4096.5'],
    ['ring bytes neg', edited(['vm.ring.bytes', -1]), 'scenario: vm.ring.bytes: expected a non-negative safe integer or a decimal string, got -1'],
    ['ring bytes hex', edited(['vm.ring.bytes', '0x1000']), 'scenario: vm.ring.bytes: expected a decimal string, got "0x1000"'],
    ['ring bytes big', edited(['vm.ring.bytes', '18446744073709551616']), 'scenario: vm.ring.bytes: does not fit in 64 bits'],
    ['ring bytes bool', edited(['vm.ring.bytes', true]), 'scenario: vm.ring.bytes: expected a number or a decimal string, got true'],
    ['ring bytes missing', edited(['vm.ring.bytes', DELETE]), 'scenario: vm.ring.bytes: expected a number or a decimal string, got undefined'],
    ['ring acqRel', edited(['vm.ring.acqRel', 'yes']), 'scenario: vm.ring.acqRel: expected true or false, got "yes"'],
    ['memslots not array', edited(['memslots', {}]), 'scenario: memslots: expected an array'],
    ['memslot not object', edited(['memslots', [3]]), 'scenario: memslots[0]: expected an object'],
    ['memslot unknown', edited(['memslots.0.x', 1]), 'scenario: memslots[0].x: unknown field (allowed: slot, asId, gpa, pages, logDirty)'],
    ['memslot slot big', edited(['memslots.0.slot', 32768]), 'scenario: memslots[0].slot: 32768 is out of range [0, 32767]'],
    ['memslot slot runner', edited(['memslots.0.slot', 32763]), 'scenario: memslots[0].slot: 32763 is reserved for the kvm runner\'s own memory'],
    ['memslot asId 2', edited(['memslots.0.asId', 2]), 'scenario: memslots[0].asId: 2 is out of range [0, 1]'],
    ['memslot gpa low', edited(['memslots.0.gpa', 4096]), 'scenario: memslots[0].gpa: 4096 is out of range [1073741824, 281474976706560]'],
    ['memslot gpa high', edited(['memslots.0.gpa', 2 ** 48]), 'scenario: memslots[0].gpa: 281474976710656 is out of range [1073741824, 281474976706560]'],
    ['memslot gpa unaligned', edited(['memslots.0.gpa', 1073741824 + 100]), 'scenario: memslots[0].gpa: must be a multiple of 4096'],
    ['memslot pages 0', edited(['memslots.0.pages', 0]), 'scenario: memslots[0].pages: 0 is out of range [1, 2097152]'],
    ['memslot pages big', edited(['memslots.0.pages', (1 << 21) + 1]), 'scenario: memslots[0].pages: 2097153 is out of range [1, 2097152]'],
    ['memslot beyond 2^48', edited(['memslots.0.gpa', 2 ** 48 - 4096], ['memslots.0.pages', 2]), 'scenario: memslots[0].pages: the slot reaches beyond 2^48'],
    ['memslot logDirty missing', edited(['memslots.0.logDirty', DELETE]), 'scenario: memslots[0].logDirty: expected true or false, got undefined'],
    ['memslot twice', edited(['memslots.1', { slot: 1, asId: 0, gpa: 2 ** 40, pages: 1, logDirty: true }]), 'scenario: memslots[1].slot: slot 1 (asId 0) is declared twice'],
    ['memslot overlap', edited(['memslots.1', { slot: 2, asId: 0, gpa: 1073741824 + 4096, pages: 1, logDirty: true }]), 'scenario: memslots[1].gpa: overlaps slot 1'],
    ['memslot overlap other as ok, then twice', edited(['memslots.1', { slot: 1, asId: 1, gpa: 1073741824, pages: 1, logDirty: true }], ['memslots.2', { slot: 1, asId: 1, gpa: 2 ** 40, pages: 1, logDirty: true }]), 'scenario: memslots[2].slot: slot 1 (asId 1) is declared twice'],
    ['vcpus 17', edited(['vcpus', 17]), 'scenario: vcpus: 17 is out of range [0, 16]'],
    ['vcpus str', edited(['vcpus', '1']), 'scenario: vcpus: expected an integer, got "1"'],
    ['steps missing', edited(['steps', DELETE]), 'scenario: steps: expected an array'],
    ['steps object', edited(['steps', {}]), 'scenario: steps: expected an array'],
    ['step not object', withSteps(5), 'scenario: steps[4]: expected an object'],
    ['step no op', withSteps({ vcpu: 0 }), 'scenario: steps[4].op: unknown op undefined (known: write, read, run, harvest, reset, getDirtyLog, clearDirtyLog, setMemslot, enableCap, createVcpu, writeEntry, readEntry, checkExtension, mmapRing)'],
    ['step unknown op', withSteps({ op: 'runn' }), 'scenario: steps[4].op: unknown op "runn" (known: write, read, run, harvest, reset, getDirtyLog, clearDirtyLog, setMemslot, enableCap, createVcpu, writeEntry, readEntry, checkExtension, mmapRing)'],
    ['step op number', withSteps({ op: 3 }), 'scenario: steps[4].op: unknown op 3 (known: write, read, run, harvest, reset, getDirtyLog, clearDirtyLog, setMemslot, enableCap, createVcpu, writeEntry, readEntry, checkExtension, mmapRing)'],
    ['step op proto', withSteps({ op: 'toString' }), 'scenario: steps[4].op: unknown op "toString" (known: write, read, run, harvest, reset, getDirtyLog, clearDirtyLog, setMemslot, enableCap, createVcpu, writeEntry, readEntry, checkExtension, mmapRing)'],
    ['step misspelt', withSteps({ op: 'run', vcpu: 0, stopOnIO: true }), 'scenario: steps[4].stopOnIO: unknown field (allowed: op, note, vcpu, stopOnIo)'],
    ['step note number', withSteps({ op: 'reset', note: 1 }), 'scenario: steps[4].note: expected a non-empty string'],
    ['step note empty', withSteps({ op: 'reset', note: '' }), 'scenario: steps[4].note: expected a non-empty string'],
    ['write vcpu missing', withSteps({ op: 'write', slot: 1, pages: [0] }), 'scenario: steps[4].vcpu: expected an integer, got undefined'],
    ['write vcpu 16', withSteps({ op: 'write', vcpu: 16, slot: 1, pages: [0] }), 'scenario: steps[4].vcpu: 16 is out of range [0, 15]'],
    ['write vcpu 1', withSteps({ op: 'write', vcpu: 1, slot: 1, pages: [0] }), 'scenario: steps[4].vcpu: vCPU 1 cannot exist here (1 created at most)'],
    ['write slot big', withSteps({ op: 'write', vcpu: 0, slot: 40000, pages: [0] }), 'scenario: steps[4].slot: 40000 is out of range [0, 32767]'],
    ['write asId 2', withSteps({ op: 'write', vcpu: 0, slot: 1, asId: 2, pages: [0] }), 'scenario: steps[4].asId: 2 is out of range [0, 1]'],
    ['write undeclared', withSteps({ op: 'write', vcpu: 0, slot: 9, pages: [0] }), 'scenario: steps[4].slot: slot 9 (asId 0) is not declared in memslots'],
    ['write undeclared asId', withSteps({ op: 'write', vcpu: 0, slot: 1, asId: 1, pages: [0] }), 'scenario: steps[4].slot: slot 1 (asId 1) is not declared in memslots'],
    ['write pages bad', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: 3 }), 'scenario: steps[4].pages: expected an array of page numbers or {from, count} within the slot\'s 512 pages'],
    ['write pages beyond', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: [0, 512] }), 'scenario: steps[4].pages[1]: 512 is out of range [0, 511]'],
    ['write pages range unknown', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: { from: 0, count: 1, x: 1 } }), 'scenario: steps[4].pages.x: unknown field (allowed: from, count)'],
    ['write pages range from', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: { from: 512, count: 1 } }), 'scenario: steps[4].pages.from: 512 is out of range [0, 511]'],
    ['write pages range count', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: { from: 500, count: 13 } }), 'scenario: steps[4].pages.count: 13 is out of range [0, 12]'],
    ['write exitEach', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: [0], exitEach: 1 }), 'scenario: steps[4].exitEach: expected true or false, got 1'],
    ['write storesPerPage 0', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: [0], storesPerPage: 0 }), 'scenario: steps[4].storesPerPage: 0 is out of range [1, 1048576]'],
    ['write storesPerPage big', withSteps({ op: 'write', vcpu: 0, slot: 1, pages: [0], storesPerPage: (1 << 20) + 1 }), 'scenario: steps[4].storesPerPage: 1048577 is out of range [1, 1048576]'],
    ['read storesPerPage', withSteps({ op: 'read', vcpu: 0, slot: 1, pages: [0], storesPerPage: 1 }), 'scenario: steps[4].storesPerPage: unknown field (allowed: op, note, vcpu, slot, asId, pages, exitEach)'],
    ['read exitEach', withSteps({ op: 'read', vcpu: 0, slot: 1, pages: [0], exitEach: 'x' }), 'scenario: steps[4].exitEach: expected true or false, got "x"'],
    ['read undeclared', withSteps({ op: 'read', vcpu: 0, slot: 2, pages: [0] }), 'scenario: steps[4].slot: slot 2 (asId 0) is not declared in memslots'],
    ['run stopOnIo', withSteps({ op: 'run', vcpu: 0, stopOnIo: 1 }), 'scenario: steps[4].stopOnIo: expected true or false, got 1'],
    ['run vcpu', withSteps({ op: 'run', vcpu: 3 }), 'scenario: steps[4].vcpu: vCPU 3 cannot exist here (1 created at most)'],
    ['harvest flagsValue', withSteps({ op: 'harvest', vcpu: 0, flagsValue: -1 }), 'scenario: steps[4].flagsValue: -1 is out of range [0, 4294967295]'],
    ['harvest max neg', withSteps({ op: 'harvest', vcpu: 0, max: -1 }), 'scenario: steps[4].max: -1 is out of range [0, 4294967295]'],
    ['harvest max big', withSteps({ op: 'harvest', vcpu: 0, max: 2 ** 32 }), 'scenario: steps[4].max: 4294967296 is out of range [0, 4294967295]'],
    ['harvest vcpu first', withSteps({ op: 'harvest', vcpu: 5, max: -1, flagsValue: -1 }), 'scenario: steps[4].vcpu: vCPU 5 cannot exist here (1 created at most)'],
    ['reset extra', withSteps({ op: 'reset', vcpu: 0 }), 'scenario: steps[4].vcpu: unknown field (allowed: op, note)'],
    ['get slot big', withSteps({ op: 'getDirtyLog', slot: 65536 }), 'scenario: steps[4].slot: 65536 is out of range [0, 65535]'],
    ['get asId big', withSteps({ op: 'getDirtyLog', slot: 1, asId: 65536 }), 'scenario: steps[4].asId: 65536 is out of range [0, 65535]'],
    ['get nullBitmap', withSteps({ op: 'getDirtyLog', slot: 1, nullBitmap: 0 }), 'scenario: steps[4].nullBitmap: expected true or false, got 0'],
    ['clear first missing', withSteps({ op: 'clearDirtyLog', slot: 1, num: 64 }), 'scenario: steps[4].first: expected an integer, got undefined'],
    ['clear num big', withSteps({ op: 'clearDirtyLog', slot: 1, first: 0, num: 2 ** 32 }), 'scenario: steps[4].num: 4294967296 is out of range [0, 4294967295]'],
    ['clear page below', withSteps({ op: 'clearDirtyLog', slot: 1, first: 64, num: 36, pages: [63] }), 'scenario: steps[4].pages[0]: page 63 is outside the bitmap [64, 128)'],
    ['clear page above', withSteps({ op: 'clearDirtyLog', slot: 1, first: 64, num: 36, pages: [64, 128] }), 'scenario: steps[4].pages[1]: page 128 is outside the bitmap [64, 128)'],
    ['clear page above num0', withSteps({ op: 'clearDirtyLog', slot: 1, first: 0, num: 0, pages: [64] }), 'scenario: steps[4].pages[0]: page 64 is outside the bitmap [0, 64)'],
    ['clear pages bad', withSteps({ op: 'clearDirtyLog', slot: 1, first: 0, num: 64, pages: 'x' }), 'scenario: steps[4].pages: expected an array of page numbers or {from, count} within the bitmap'],
    ['clear range', withSteps({ op: 'clearDirtyLog', slot: 1, first: 0, num: 64, pages: { from: 60, count: 10 } }), 'scenario: steps[4].pages[4]: page 64 is outside the bitmap [0, 64)'],
    ['clear nullBitmap', withSteps({ op: 'clearDirtyLog', slot: 1, first: 0, num: 64, nullBitmap: 'no' }), 'scenario: steps[4].nullBitmap: expected true or false, got "no"'],
    ['setMemslot undeclared', withSteps({ op: 'setMemslot', slot: 3, logDirty: true }), 'scenario: steps[4].slot: slot 3 (asId 0) is not declared in memslots'],
    ['setMemslot no logDirty', withSteps({ op: 'setMemslot', slot: 1 }), 'scenario: steps[4].logDirty: expected true or false, got undefined'],
    ['setMemslot delete bad', withSteps({ op: 'setMemslot', slot: 1, delete: 1 }), 'scenario: steps[4].delete: expected true or false, got 1'],
    ['setMemslot delete logDirty bad', withSteps({ op: 'setMemslot', slot: 1, delete: true, logDirty: 1 }), 'scenario: steps[4].logDirty: expected true or false, got 1'],
    ['setMemslot slot big', withSteps({ op: 'setMemslot', slot: 32768, logDirty: true }), 'scenario: steps[4].slot: 32768 is out of range [0, 32767]'],
    ['enableCap unknown', withSteps({ op: 'enableCap', cap: 'dirtyBitmap', bytes: 1 }), 'scenario: steps[4].cap: expected one of dirtyRing, dirtyRingAcqRel, manualProtect, dirtyRingWithBitmap, got "dirtyBitmap"'],
    ['enableCap proto', withSteps({ op: 'enableCap', cap: 'constructor' }), 'scenario: steps[4].cap: expected one of dirtyRing, dirtyRingAcqRel, manualProtect, dirtyRingWithBitmap, got "constructor"'],
    ['enableCap ring flags', withSteps({ op: 'enableCap', cap: 'dirtyRing', flags: 1 }), 'scenario: steps[4].flags: dirtyRing takes "bytes", not "flags"'],
    ['enableCap acqrel flags', withSteps({ op: 'enableCap', cap: 'dirtyRingAcqRel', flags: 1, bytes: 4096 }), 'scenario: steps[4].flags: dirtyRingAcqRel takes "bytes", not "flags"'],
    ['enableCap ring no bytes', withSteps({ op: 'enableCap', cap: 'dirtyRing' }), 'scenario: steps[4].bytes: expected a number or a decimal string, got undefined'],
    ['enableCap manual bytes', withSteps({ op: 'enableCap', cap: 'manualProtect', bytes: 1 }), 'scenario: steps[4].bytes: manualProtect takes "flags", not "bytes"'],
    ['enableCap manual no flags', withSteps({ op: 'enableCap', cap: 'manualProtect' }), 'scenario: steps[4].flags: expected an integer, got undefined'],
    ['enableCap bitmap flags bad', withSteps({ op: 'enableCap', cap: 'dirtyRingWithBitmap', flags: -1 }), 'scenario: steps[4].flags: -1 is out of range [0, 9007199254740991]'],
    ['enableCap capFlags', withSteps({ op: 'enableCap', cap: 'dirtyRingWithBitmap', capFlags: 2 ** 32 }), 'scenario: steps[4].capFlags: 4294967296 is out of range [0, 4294967295]'],
    ['enableCap capFlags first', withSteps({ op: 'enableCap', cap: 'dirtyRing', capFlags: -1, flags: 1 }), 'scenario: steps[4].capFlags: -1 is out of range [0, 4294967295]'],
    ['createVcpu 17', edited(['vcpus', 16], ['steps.4', { op: 'createVcpu' }]), 'scenario: steps[4]: at most 16 vCPUs'],
    ['createVcpu then vcpu 2', withSteps({ op: 'createVcpu' }, { op: 'run', vcpu: 1 }, { op: 'run', vcpu: 2 }), 'scenario: steps[6].vcpu: vCPU 2 cannot exist here (2 created at most)'],
    ['createVcpu extra', withSteps({ op: 'createVcpu', n: 1 }), 'scenario: steps[4].n: unknown field (allowed: op, note)'],
    ['writeEntry empty', withSteps({ op: 'writeEntry', vcpu: 0, index: 3 }), 'scenario: steps[4]: writeEntry needs at least one of flags, slot, offset'],
    ['writeEntry index', withSteps({ op: 'writeEntry', vcpu: 0, index: -3, flags: 1 }), 'scenario: steps[4].index: -3 is out of range [0, 4294967295]'],
    ['writeEntry flags', withSteps({ op: 'writeEntry', vcpu: 0, index: 3, flags: 2 ** 32 }), 'scenario: steps[4].flags: 4294967296 is out of range [0, 4294967295]'],
    ['writeEntry slot', withSteps({ op: 'writeEntry', vcpu: 0, index: 3, slot: -1 }), 'scenario: steps[4].slot: -1 is out of range [0, 4294967295]'],
    ['writeEntry offset', withSteps({ op: 'writeEntry', vcpu: 0, index: 3, offset: '-1' }), 'scenario: steps[4].offset: expected a decimal string, got "-1"'],
    ['readEntry no index', withSteps({ op: 'readEntry', vcpu: 0 }), 'scenario: steps[4].index: expected an integer, got undefined'],
    ['checkExtension cap', withSteps({ op: 'checkExtension', cap: 1 }), 'scenario: steps[4].cap: expected one of dirtyRing, dirtyRingAcqRel, manualProtect, dirtyRingWithBitmap, got 1'],
    ['mmapRing shared', withSteps({ op: 'mmapRing', vcpu: 0, shared: 1 }), 'scenario: steps[4].shared: expected true or false, got 1'],
    ['mmapRing write', withSteps({ op: 'mmapRing', vcpu: 0, write: 1 }), 'scenario: steps[4].write: expected true or false, got 1'],
    ['mmapRing exec', withSteps({ op: 'mmapRing', vcpu: 0, exec: 1 }), 'scenario: steps[4].exec: expected true or false, got 1'],
    ['mmapRing private', withSteps({ op: 'mmapRing', vcpu: 0, private: true }), 'scenario: steps[4].private: unknown field (allowed: op, note, vcpu, shared, write, exec)'],
  ];
  it.each(bad)('rejects %s with the exact message', (_what, json, message) => {
    expect(() => parseScenario(json)).toThrow(new Error(message));
  });

  const badInBaseSteps: [string, unknown, RegExp][] = [
    ['an unknown op', edited(['steps.1.op', 'runn']), /^scenario: steps\[1\]\.op: unknown op "runn"/],
    ['a misspelt step field', edited(['steps.0.storePerPage', 2]), /^scenario: steps\[0\]\.storePerPage: unknown field/],
    ['a write to an undeclared slot', edited(['steps.0.slot', 9]), /^scenario: steps\[0\]\.slot: slot 9 \(asId 0\) is not declared/],
    ['a page beyond the slot', edited(['steps.0.pages', [0, 512]]), /^scenario: steps\[0\]\.pages\[1\]: 512 is out of range/],
    ['a vCPU that cannot exist', edited(['steps.1.vcpu', 1]), /^scenario: steps\[1\]\.vcpu: vCPU 1 cannot exist/],
    ['a negative harvest max', edited(['steps.2.max', -1]), /^scenario: steps\[2\]\.max: /],
  ];
  it.each(badInBaseSteps)('rejects %s in the base steps, naming the field', (_what, json, message) => {
    expect(() => parseScenario(json)).toThrow(message);
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

  it('take every field, and serialise in the canonical key order', () => {
    const r = parseResults([
      { errno: 'EINVAL' },
      { rc: 0, exit: 'other:8', entries: [{ slot: 65537, offset: '18446744073709551615' }], count: 2, pages: [1], value: -1, entry: { flags: 1, slot: 1, offset: 3 } },
    ]);
    expect(serializeResults(r)).toBe(
      '[\n  {"errno":"EINVAL"},\n'
      + '  {"rc":0,"exit":"other:8","count":2,"value":-1,"pages":[1],"entries":[{"slot":65537,"offset":"18446744073709551615"}],"entry":{"flags":1,"slot":1,"offset":3}}\n]\n',
    );
    expect(serializeResults([])).toBe('[]\n');
  });

  it('diff names the differing steps', () => {
    expect(diffResults([{ rc: 0, count: 2 }, { rc: 0 }], [{ rc: 0, count: 3 }, { rc: 0 }])).toEqual([
      'step 0: expected {"rc":0,"count":2}, got {"rc":0,"count":3}',
    ]);
    expect(diffResults([{ rc: 0 }], [{ rc: 0 }, { errno: 'EINVAL' }], [{ op: 'reset' }, { op: 'reset' }])).toEqual([
      'step 1 (reset): expected (none), got {"errno":"EINVAL"}',
    ]);
  });

  const bad: [string, unknown, string][] = [
    ['not array', {}, 'scenario: results: expected an array'],
    ['errno extra', [{ errno: 'EINVAL', rc: 0 }], 'scenario: results[0].rc: unknown field (allowed: errno)'],
    ['errno empty', [{ errno: '' }], 'scenario: results[0].errno: expected a non-empty string'],
    ['errno lower', [{ errno: 'einval' }], 'scenario: results[0].errno: not an errno name: einval'],
    ['rc 1', [{ rc: 1 }], 'scenario: results[0].rc: expected 0'],
    ['rc missing', [{}], 'scenario: results[0].rc: expected 0'],
    ['not object', [3], 'scenario: results[0]: expected an object'],
    ['unknown', [{ rc: 0, x: 1 }], 'scenario: results[0].x: unknown field (allowed: rc, exit, entries, count, pages, value, entry)'],
    ['exit', [{ rc: 0, exit: 'halt' }], 'scenario: results[0].exit: bad exit "halt"'],
    ['exit num', [{ rc: 0, exit: 5 }], 'scenario: results[0].exit: bad exit 5'],
    ['entries not array', [{ rc: 0, entries: {} }], 'scenario: results[0].entries: expected an array'],
    ['entries item', [{ rc: 0, entries: [3] }], 'scenario: results[0].entries[0]: expected an object'],
    ['entries slot', [{ rc: 0, entries: [{ slot: -1, offset: 1 }] }], 'scenario: results[0].entries[0].slot: -1 is out of range [0, 4294967295]'],
    ['entries offset str small', [{ rc: 0, entries: [{ slot: 1, offset: '5' }] }], 'scenario: results[0].entries[0].offset: offsets up to 2^53 - 1 must be numbers'],
    ['entries offset big num', [{ rc: 0, entries: [{ slot: 1, offset: 2 ** 60 }] }], 'scenario: results[0].entries[0].offset: 1152921504606847000 is out of range [0, 9007199254740991]'],
    ['entries offset bad str', [{ rc: 0, entries: [{ slot: 1, offset: 'x' }] }], 'scenario: results[0].entries[0].offset: expected a decimal string, got "x"'],
    ['count', [{ rc: 0, count: -1 }], 'scenario: results[0].count: -1 is out of range [0, 9007199254740991]'],
    ['pages not array', [{ rc: 0, pages: 1 }], 'scenario: results[0].pages: expected an array'],
    ['pages item', [{ rc: 0, pages: [1, -1] }], 'scenario: results[0].pages[1]: -1 is out of range [0, 9007199254740991]'],
    ['value', [{ rc: 0, value: 1.5 }], 'scenario: results[0].value: expected an integer, got 1.5'],
    ['entry unknown', [{ rc: 0, entry: { flags: 1, slot: 1, offset: 1, x: 1 } }], 'scenario: results[0].entry.x: unknown field (allowed: flags, slot, offset)'],
    ['entry flags', [{ rc: 0, entry: { flags: -1, slot: 1, offset: 1 } }], 'scenario: results[0].entry.flags: -1 is out of range [0, 4294967295]'],
    ['entry offset', [{ rc: 0, entry: { flags: 1, slot: 1, offset: null } }], 'scenario: results[0].entry.offset: expected a number or a decimal string, got null'],
  ];
  it.each(bad)('parseResults rejects %s with the exact message', (_what, json, message) => {
    expect(() => parseResults(json)).toThrow(new Error(message));
  });
});
