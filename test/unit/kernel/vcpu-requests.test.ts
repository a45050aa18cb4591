/** Requests to vCPUs from outside them: the remote TLB flush, requests to all, kicks. */
import { describe, expect, it } from 'vitest';
import { VcpuLayout, VcpuMode, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { flushRemoteTlbs, kickVcpu, requestAllAndWait } from '../../../src/kernel/vcpu-requests.js';
import { Vm } from '../../../src/kernel/vm.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';

const W = VcpuLayout.words;

function vmWithVcpus(n: number, mutants = 0): Vm {
  const vm = Vm.create({ mutants });
  for (let i = 0; i < n; i++) vm.createVcpu();
  return vm;
}

describe('the remote TLB flush', () => {
  it('posts TLB_FLUSH to every vCPU and counts one flush; vCPUs outside guest mode are not waited for', () => {
    const vm = vmWithVcpus(3);
    flushRemoteTlbs(vm);
    for (let i = 0; i < 3; i++) expect(Atomics.load(vm.vcpuBlock(i).i32, W.REQUESTS)).toBe(VcpuRequest.TLB_FLUSH);
    expect(vm.stats().tlbFlushes).toBe(1);
    vm.flushRemoteTlbs();
    expect(vm.stats().tlbFlushes).toBe(2);
  });

  it('the flush-no-wait mutant returns at once even while a vCPU in guest mode has not acknowledged', () => {
    const vm = vmWithVcpus(1, Mutant.FLUSH_NO_WAIT);
    Atomics.store(vm.vcpuBlock(0).i32, W.MODE, VcpuMode.IN_GUEST);
    const t0 = performance.now();
    flushRemoteTlbs(vm);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(Atomics.load(vm.vcpuBlock(0).i32, W.REQUESTS)).toBe(VcpuRequest.TLB_FLUSH);
  });

  it('requests to all keep the bits already pending', () => {
    const vm = vmWithVcpus(2);
    kickVcpu(vm, 1);
    requestAllAndWait(vm, VcpuRequest.MEMSLOTS_UPDATED);
    expect(Atomics.load(vm.vcpuBlock(0).i32, W.REQUESTS)).toBe(VcpuRequest.MEMSLOTS_UPDATED);
    expect(Atomics.load(vm.vcpuBlock(1).i32, W.REQUESTS)).toBe(VcpuRequest.MEMSLOTS_UPDATED | VcpuRequest.KICK);
  });
});

describe('kick', () => {
  it('posts KICK to that vCPU only; a vCPU that does not exist is EINVAL', () => {
    const vm = vmWithVcpus(2);
    vm.kickVcpu(0);
    expect(Atomics.load(vm.vcpuBlock(0).i32, W.REQUESTS)).toBe(VcpuRequest.KICK);
    expect(Atomics.load(vm.vcpuBlock(1).i32, W.REQUESTS)).toBe(0);
    expect(() => vm.kickVcpu(5)).toThrowError(expect.objectContaining({ errno: 'EINVAL' }));
  });
});
