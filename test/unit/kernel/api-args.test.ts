/**
 * The library's public entry points refuse what the ABI cannot hold, with the kernel's errno, the
 * parameter named, and nothing changed: no dirty page is lost to a bad argument.
 */
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, PAGE_SIZE } from '../../../src/abi/constants.js';
import { KvmError } from '../../../src/abi/errno.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { DmaDevice } from '../../../src/kernel/device.js';
import { bitmapPages } from '../../../src/kernel/dirty-bitmap.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';

const BASE = 0x1000;
const DIRTY = [3, 9, 20, 31, 40];

/** A bitmap VM with slot 0 of `pages` pages and DIRTY stored by a vCPU. */
function dirtyVm(pages: number, manual = false) {
  const vm = Vm.create();
  if (manual) vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1);
  vm.createMemslot({ id: 0, baseGfn: BASE, pageCount: pages, logDirty: true });
  vm.createVcpu();
  const vcpu = new Vcpu(vm, 0);
  const prog = new ScriptedProgram();
  prog.enqueue(DIRTY.map((p) => BASE + p));
  vcpu.run(prog);
  const get = (): number[] => {
    const out = new Uint8Array(Vm.bitmapBytes(pages));
    vm.getDirtyLog(0, out);
    return bitmapPages(new Uint32Array(out.buffer));
  };
  return { vm, get };
}

function failure(fn: () => unknown): { errno: string; param: string | undefined } {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvmError) return { errno: e.errno, param: e.param };
    throw e;
  }
  throw new Error('expected a KvmError, the call succeeded');
}

describe('KVM_GET_DIRTY_LOG takes a bitmap of bytes', () => {
  it('a Uint8Array too short for the slot is EFAULT and every dirty bit stays', () => {
    const { vm, get } = dirtyVm(1000); // ALIGN(1000, 64) / 8 = 128 bytes
    expect(failure(() => vm.getDirtyLog(0, new Uint8Array(32)))).toEqual({ errno: 'EFAULT', param: 'dirty_bitmap' });
    expect(get()).toEqual(DIRTY);
  });
  it('a Uint8Array of the right size receives every page, bit n = page n', () => {
    const { vm } = dirtyVm(100);
    const out = new Uint8Array(16);
    vm.getDirtyLog(0, out);
    expect(bitmapPages(new Uint32Array(out.buffer))).toEqual(DIRTY);
  });
  it('an unaligned Uint8Array view receives the same bytes, and nothing past them', () => {
    const { vm } = dirtyVm(100);
    const backing = new Uint8Array(20).fill(0xee);
    vm.getDirtyLog(0, backing.subarray(1, 19));
    expect(bitmapPages(new Uint32Array(backing.slice(1, 17).buffer))).toEqual(DIRTY);
    expect([backing[0], backing[17], backing[18], backing[19]]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });
  it.each([
    ['undefined', undefined],
    ['a string', 'bitmap'],
    ['a number', 4096],
    ['an array', [0, 0, 0, 0]],
    ['an Int32Array', new Int32Array(4)],
    ['a Float64Array', new Float64Array(2)],
  ])('%s is EFAULT and leaves the bits (legacy and manual)', (_name, bad) => {
    for (const manual of [false, true]) {
      const { vm, get } = dirtyVm(100, manual);
      expect(failure(() => vm.getDirtyLog(0, bad as unknown as Uint8Array))).toEqual({ errno: 'EFAULT', param: 'dirty_bitmap' });
      expect(get()).toEqual(DIRTY);
    }
  });
  it.each([NaN, undefined, -1, 1.5, '0', 2 ** 32, Infinity])('slot %s is EINVAL and consumes no bit of slot 0', (slot) => {
    const { vm, get } = dirtyVm(100);
    expect(failure(() => vm.getDirtyLog(slot as number, new Uint8Array(16)))).toEqual({ errno: 'EINVAL', param: 'slot' });
    expect(get()).toEqual(DIRTY);
  });
});

describe('KVM_CLEAR_DIRTY_LOG', () => {
  it('a short or mistyped mask is EFAULT and clears nothing', () => {
    const { vm, get } = dirtyVm(100, true);
    expect(failure(() => vm.clearDirtyLog(0, 0, 64, new Uint8Array(4)))).toEqual({ errno: 'EFAULT', param: 'dirty_bitmap' });
    expect(failure(() => vm.clearDirtyLog(0, 0, 64, [255, 255] as unknown as Uint8Array))).toEqual({ errno: 'EFAULT', param: 'dirty_bitmap' });
    expect(get()).toEqual(DIRTY);
  });
  it('a Uint8Array mask clears bit n = page first + n', () => {
    const { vm, get } = dirtyVm(100, true);
    const mask = new Uint8Array(8);
    mask[1] = 1 << 1; // page 9
    vm.clearDirtyLog(0, 0, 64, mask);
    expect(get()).toEqual([3, 20, 31, 40]);
  });
  it.each([NaN, '0', 0.5, -64])('first_page %s is EINVAL', (first) => {
    const { vm, get } = dirtyVm(100, true);
    expect(failure(() => vm.clearDirtyLog(0, first as number, 64, new Uint8Array(8))).errno).toBe('EINVAL');
    expect(get()).toEqual(DIRTY);
  });
});

describe('the other entry points', () => {
  it('enableCap: NaN, strings, negative or fractional args[0], flags or cap are EINVAL and enable nothing', () => {
    const vm = Vm.create();
    expect(failure(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, NaN))).toEqual({ errno: 'EINVAL', param: 'args[0]' });
    expect(failure(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, '1' as unknown as number))).toEqual({ errno: 'EINVAL', param: 'args[0]' });
    expect(failure(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, -1n))).toEqual({ errno: 'EINVAL', param: 'args[0]' });
    expect(failure(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096.5))).toEqual({ errno: 'EINVAL', param: 'args[0]' });
    expect(failure(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1, NaN))).toEqual({ errno: 'EINVAL', param: 'flags' });
    expect(failure(() => vm.enableCap(NaN, 1))).toEqual({ errno: 'EINVAL', param: 'cap' });
    expect(vm.manualProtect).toBe(0);
    expect(vm.ringBytes).toBe(0);
  });
  it('resetDirtyRings with a non-function signal check is EINVAL', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 65536);
    expect(failure(() => vm.resetDirtyRings('x' as unknown as () => boolean))).toEqual({ errno: 'EINVAL', param: 'signalPending' });
  });
  it("setUserMemoryRegion: memory 'hello', NaN flags or slot, a non-object are refused and no slot appears", () => {
    const vm = Vm.create();
    const region = { slot: 0, flags: 0, guestPhysAddr: 0, memorySize: PAGE_SIZE };
    expect(failure(() => vm.setUserMemoryRegion({ ...region, memory: 'hello' as unknown as SharedArrayBuffer }))).toEqual({ errno: 'EINVAL', param: 'userspace_addr' });
    expect(failure(() => vm.setUserMemoryRegion({ ...region, flags: NaN }))).toEqual({ errno: 'EINVAL', param: 'flags' });
    expect(failure(() => vm.setUserMemoryRegion({ ...region, flags: 4 }))).toEqual({ errno: 'EINVAL', param: 'flags' });
    expect(failure(() => vm.setUserMemoryRegion({ ...region, slot: NaN }))).toEqual({ errno: 'EINVAL', param: 'slot' });
    expect(failure(() => vm.setUserMemoryRegion(null as unknown as typeof region))).toEqual({ errno: 'EFAULT', param: 'region' });
    expect(vm.memslots.active()).toEqual([]);
  });
  it('createMemslot / setLogDirty / deleteMemslot name their own parameters', () => {
    const vm = Vm.create();
    expect(failure(() => vm.createMemslot({ id: 70000, baseGfn: 0, pageCount: 1 }))).toEqual({ errno: 'EINVAL', param: 'id' });
    expect(failure(() => vm.createMemslot({ id: 0, baseGfn: 0, pageCount: 'x' as unknown as number }))).toEqual({ errno: 'EINVAL', param: 'pageCount' });
    expect(failure(() => vm.createMemslot({ id: 0, baseGfn: -1, pageCount: 1 }))).toEqual({ errno: 'EINVAL', param: 'baseGfn' });
    expect(vm.memslots.active()).toEqual([]);
    vm.createMemslot({ id: 0, baseGfn: 0, pageCount: 1 });
    expect(failure(() => vm.setLogDirty(0, 'yes' as unknown as boolean))).toEqual({ errno: 'EINVAL', param: 'on' });
    expect(failure(() => vm.deleteMemslot(NaN))).toEqual({ errno: 'EINVAL', param: 'id' });
    expect(vm.memslots.active().map((s) => s.logDirty)).toEqual([false]);
  });
  it('vCPU indexes, mmap protections, VM options and DMA writes are checked', () => {
    expect(failure(() => Vm.create({ mutants: 1 << 30 }))).toEqual({ errno: 'EINVAL', param: 'options.mutants' });
    expect(failure(() => Vm.create({ smm: 1 as unknown as boolean }))).toEqual({ errno: 'EINVAL', param: 'options.smm' });
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 65536);
    vm.createVcpu();
    expect(failure(() => vm.kickVcpu(NaN))).toEqual({ errno: 'EINVAL', param: 'vcpu' });
    expect(failure(() => vm.kickVcpu(1))).toEqual({ errno: 'EINVAL', param: 'vcpu' });
    expect(failure(() => new Vcpu(vm, '0' as unknown as number))).toEqual({ errno: 'EINVAL', param: 'vcpu' });
    expect(failure(() => vm.mmapRing(0, null as unknown as object))).toEqual({ errno: 'EFAULT', param: 'prot' });
    expect(failure(() => vm.presetRingIndex(NaN, 0))).toEqual({ errno: 'EINVAL', param: 'vcpu' });
    const slot = vm.createMemslot({ id: 0, baseGfn: BASE, pageCount: 4, logDirty: true });
    const device = new DmaDevice(vm, 0);
    expect(failure(() => device.write(BASE + 0.5, 1))).toEqual({ errno: 'EFAULT', param: 'gfn' });
    expect(failure(() => device.write(BASE, NaN))).toEqual({ errno: 'EINVAL', param: 'value' });
    expect(failure(() => vm.markPageDirtyNoVcpu(slot, 4))).toEqual({ errno: 'EINVAL', param: 'page' });
    expect(device.writes).toBe(0);
    expect(failure(() => vm.pageTrack.registerNotifier({ trackWrite: 1 } as never))).toEqual({ errno: 'EINVAL', param: 'notifier' });
    expect(vm.pageTrack.activeNotifiers).toBe(0);
    expect(failure(() => vm.pageTrack.addGfn(BASE + 0.5))).toEqual({ errno: 'EINVAL', param: 'gfn' });
  });
});
