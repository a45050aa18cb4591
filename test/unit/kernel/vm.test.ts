/** The VM fd: capabilities, vCPU creation, the ring mapping, and attaching from another thread. */
import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
} from '../../../src/abi/constants.js';
import { Vm } from '../../../src/kernel/vm.js';
import { errnoOf } from '../../helpers/errno.js';

describe('KVM_ENABLE_CAP(DIRTY_LOG_RING)', () => {
  it('is allowed once; the two ring caps share that once', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 8192))).toBe('EINVAL');
    expect(vm.ringBytes).toBe(4096);
  });
  it('is refused once a vCPU exists, and nothing changes', () => {
    const vm = Vm.create();
    vm.createVcpu();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096))).toBe('EINVAL');
    expect(vm.ringBytes).toBe(0);
  });
  it('ignores cap.flags, truncates args[0] to u32, validates before committing', () => {
    const vm = Vm.create();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 2097152))).toBe('E2BIG');
    expect(vm.ringBytes).toBe(0);
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 2 ** 32 + 4096, 1);
    expect(vm.ringBytes).toBe(4096);
  });
  it('is allowed after a logged memslot exists; every vCPU created afterwards has a zeroed ring', () => {
    const vm = Vm.create();
    vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 16, logDirty: true });
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 8192);
    const i = vm.createVcpu();
    const ring = vm.mmapRing(i);
    expect(ring.entryCount).toBe(512);
    expect(ring.i32.every((w) => w === 0)).toBe(true);
  });
  it('CHECK_EXTENSION reports 1 MiB for both ring caps, 3 for manual protect, 0 for ring-with-bitmap on x86', () => {
    const vm = Vm.create();
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING)).toBe(1048576);
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL)).toBe(1048576);
    expect(vm.checkExtension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)).toBe(3);
    expect(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP)).toBe(0);
    expect(errnoOf(() => vm.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0))).toBe('EINVAL');
  });
  it('manual protect: flags must be 0, INITIALLY_SET needs ENABLE, unknown bits refused', () => {
    const vm = Vm.create();
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1, 1))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 4))).toBe('EINVAL');
    expect(errnoOf(() => vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 2))).toBe('EINVAL');
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 3);
    expect(vm.manualProtect).toBe(3);
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0);
    expect(vm.manualProtect).toBe(0);
  });
});

describe('ring mmap', () => {
  it('refuses executable mappings with EPERM (before KVM looks), private ones with EINVAL', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    vm.createVcpu();
    expect(errnoOf(() => vm.mmapRing(0, { shared: false }))).toBe('EINVAL');
    expect(errnoOf(() => vm.mmapRing(0, { exec: true }))).toBe('EPERM');
    expect(errnoOf(() => vm.mmapRing(0, { shared: false, exec: true }))).toBe('EPERM');
    expect(vm.mmapRing(0).entryCount).toBe(256);
  });
});

describe('attaching a VM from another thread', () => {
  it('sees the same capabilities, slots and vCPUs through the shared buffers', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 8192);
    const slot = vm.createMemslot({ id: 3, baseGfn: 0x1000, pageCount: 32, logDirty: true });
    vm.createVcpu();
    const other = Vm.attach(structuredClone(vm.buffers()));
    expect(other.ringBytes).toBe(8192);
    const seen = other.memslots.findById(0, 3)!;
    expect(seen.pageCount).toBe(32);
    seen.mem32[5] = 0xabcd;
    expect(slot.mem32[5]).toBe(0xabcd);
    other.ring(0)!.push(slot.encodedSlot, 4, 0);
    expect(vm.ring(0)!.used()).toBe(1);
  });
});
