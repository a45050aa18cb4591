/**
 * Rings placed in a shared WebAssembly.Memory (VmOptions.ringSpace): each vCPU's ring is its
 * slice of the memory, zeroed, seen by a VM attached from the buffers (the memory travels with
 * them); a memory too small for the next ring is ENOMEM at KVM_CREATE_VCPU, a memory that is not
 * shared or an unaligned offset is EINVAL at KVM_CREATE_VM, and a push lands in the memory's bytes.
 */
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL } from '../../../src/abi/constants.js';
import { Vm } from '../../../src/kernel/vm.js';

const PAGE = 65536;
const RING_BYTES = 256 * 16;

function ringVm(memory: WebAssembly.Memory, byteOffset: number): Vm {
  const vm = Vm.create({ ringSpace: { memory, byteOffset } });
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, RING_BYTES);
  return vm;
}

describe('rings in a WebAssembly memory', () => {
  it('each ring is its slice of the memory, zeroed, and an attached VM maps the same bytes', () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 4, shared: true });
    new Int32Array(memory.buffer).fill(-1);
    const vm = ringVm(memory, PAGE);
    vm.createVcpu();
    vm.createVcpu();
    const r1 = vm.mmapRing(1);
    expect(r1.i32.buffer).toBe(memory.buffer);
    expect(r1.i32.byteOffset).toBe(PAGE + RING_BYTES);
    expect(r1.entryCount).toBe(256);
    expect(Array.from(r1.i32).every((w) => w === 0)).toBe(true);
    // Below the rings, the module's own pages are untouched.
    expect(new Int32Array(memory.buffer, 0, 4)[0]).toBe(-1);
    const other = Vm.attach(vm.buffers());
    expect(other.ringMemory).toBe(memory);
    vm.ring(1)!.push(7, 42, 0);
    expect(other.mmapRing(1).u32[1]).toBe(7);
    expect(other.mmapRing(1).u32[2]).toBe(42);
    expect(new Uint32Array(memory.buffer, PAGE + RING_BYTES, 4)[2]).toBe(42);
  });

  it('a memory too small for the next ring: ENOMEM at KVM_CREATE_VCPU, nothing created', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const vm = ringVm(memory, PAGE - RING_BYTES);
    vm.createVcpu();
    expect(() => vm.createVcpu()).toThrow(/ENOMEM/);
    expect(vm.createdVcpus).toBe(1);
  });

  it('an unshared memory or an unaligned offset: EINVAL at KVM_CREATE_VM', () => {
    expect(() => Vm.create({ ringSpace: { memory: new WebAssembly.Memory({ initial: 1 }), byteOffset: 0 } })).toThrow(/EINVAL.*shared WebAssembly.Memory/);
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    expect(() => Vm.create({ ringSpace: { memory: shared, byteOffset: 8 } })).toThrow(/EINVAL.*16-byte aligned/);
  });
});
