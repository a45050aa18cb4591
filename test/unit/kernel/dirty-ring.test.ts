/**
 * The per-vCPU dirty ring: size validation, push and the soft-full threshold, one ring's reset
 * walk, harvest, and the ring's invariants (which must fire on a corrupted state).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, encodeSlot } from '../../../src/abi/constants.js';
import { DIRTY_GFN_WORDS } from '../../../src/abi/dirty-gfn.js';
import { SharedBlock } from '../../../src/abi/layout.js';
import { AssertionError, debugChecks } from '../../../src/base/assert.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';
import {
  DirtyRing,
  type DirtyRingOptions,
  checkResetAdvance,
  harvestRing,
  validateRingBytes,
  writeRawEntry,
} from '../../../src/kernel/dirty-ring.js';
import { ResetBatch } from '../../../src/kernel/reset-batch.js';
import { Step, clearStepHook, installStepHook } from '../../../src/kernel/step-hook.js';
import { errnoOf } from '../../helpers/errno.js';

const V = VcpuLayout.words;

function bareRing(entries: number, start = 0, onOverflow: () => void = () => {}): DirtyRing {
  const vcpu = new SharedBlock(VcpuLayout);
  Atomics.store(vcpu.i32, V.DIRTY_INDEX, start | 0);
  Atomics.store(vcpu.i32, V.RESET_INDEX, start | 0);
  return new DirtyRing(new SharedArrayBuffer(entries * 16), vcpu, { onOverflow });
}

describe('ring size validation (as observed on 6.18)', () => {
  it.each([0, 1024, 2048, 4095, 12288])('%i bytes → EINVAL', (bytes) => {
    expect(errnoOf(() => validateRingBytes(bytes))).toBe('EINVAL');
  });
  it.each([4096, 8192, 16384, 65536, 1048576])('%i bytes → accepted', (bytes) => {
    expect(validateRingBytes(bytes)).toBe(bytes);
  });
  it('2097152 bytes → E2BIG', () => {
    expect(errnoOf(() => validateRingBytes(2097152))).toBe('E2BIG');
  });
  it('the u64 argument is truncated to u32: 2^32 + 4096 enables a 4096-byte ring', () => {
    expect(validateRingBytes(2 ** 32 + 4096)).toBe(4096);
    expect(validateRingBytes(2n ** 32n + 4096n)).toBe(4096);
    expect(errnoOf(() => validateRingBytes(2 ** 32))).toBe('EINVAL');
  });
  it('with the PML reserve (576 entries) the minimum is 16384 bytes', () => {
    expect(errnoOf(() => validateRingBytes(8192, 576))).toBe('EINVAL');
    expect(validateRingBytes(16384, 576)).toBe(16384);
  });
});

describe('push, used and the soft-full threshold', () => {
  it.each([
    [256, 192],
    [512, 448],
    [4096, 4032],
  ])('a %i-entry ring becomes soft-full at exactly %i entries', (entries, limit) => {
    const ring = bareRing(entries);
    for (let i = 1; i <= limit; i++) {
      const soft = ring.push(encodeSlot(0, 1), i, 0);
      expect(soft).toBe(i >= limit);
    }
    expect(ring.used()).toBe(limit);
    expect(ring.isSoftFull()).toBe(true);
    expect(ring.isFull()).toBe(false);
  });

  it('indices are free-running u32 and wrap around 2^32', () => {
    const ring = bareRing(256, 0xffffff80); // 128 below the wrap
    for (let i = 0; i < 150; i++) ring.push(encodeSlot(0, 1), i, 0);
    expect(ring.dirtyIndexShared).toBe((0xffffff80 + 150) >>> 0);
    expect(ring.used()).toBe(150);
    // Entry i lives at index & (size - 1): the 150th push went to slot (0xffffff80 + 149) & 255.
    expect(ring.entryFlags(0xffffff80 + 149)).toBe(KVM_DIRTY_GFN_F_DIRTY);
    const cursor = { fetchIndex: 0xffffff80 };
    const seen: number[] = [];
    harvestRing({ i32: ring.i32, u32: ring.u32, entryCount: 256 }, cursor, 1000, (_s, lo) => seen.push(lo));
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(cursor.fetchIndex).toBe((0xffffff80 + 150) >>> 0);
  });

  it('the payload is published before DIRTY, and harvest stops at the first entry that is not exactly DIRTY', () => {
    const ring = bareRing(256);
    ring.push(encodeSlot(0, 7), 5, 0);
    ring.push(encodeSlot(0, 7), 6, 0);
    const views = { i32: ring.i32, u32: ring.u32, entryCount: 256 };
    const cursor = { fetchIndex: 0 };
    expect(harvestRing(views, cursor, 1, () => {})).toBe(1);
    expect(ring.entryFlags(0)).toBe(KVM_DIRTY_GFN_F_RESET);
    const got: [number, number][] = [];
    expect(harvestRing(views, cursor, 10, (s, o) => got.push([s, o]))).toBe(1);
    expect(got).toEqual([[encodeSlot(0, 7), 6]]);
    expect(harvestRing(views, cursor, 10, () => {})).toBe(0);
  });

  it('harvest collects flags exactly 1: DIRTY plus an unknown bit (5) stops it, as QEMU and the selftest do', () => {
    const ring = bareRing(256);
    for (let i = 0; i < 3; i++) ring.push(encodeSlot(0, 7), i, 0);
    const views = { i32: ring.i32, u32: ring.u32, entryCount: 256 };
    writeRawEntry(views, 1, 5, encodeSlot(0, 7), 1n);
    const cursor = { fetchIndex: 0 };
    const got: number[] = [];
    expect(harvestRing(views, cursor, 10, (_s, o) => got.push(o))).toBe(1);
    expect(got).toEqual([0]);
    expect(ring.entryFlags(1)).toBe(5);
    expect(cursor.fetchIndex).toBe(1);
  });
});

describe('resetWalk that throws part-way', () => {
  it('publishes reset_index for the entries it consumed, so the next walk goes on from there', () => {
    const ring = bareRing(256);
    const slot = encodeSlot(0, 1);
    for (const off of [0, 1000, 2000, 3000]) ring.push(slot, off, 0);
    // Userspace's harvest: every entry handed back with RESET.
    for (let i = 0; i < 4; i++) Atomics.store(ring.i32, i * DIRTY_GFN_WORDS, KVM_DIRTY_GFN_F_RESET);
    const batch = new ResetBatch();
    const failing = (): void => {
      throw new Error('mmu_lock: no progress (wedged peer?)');
    };
    // Offset 1000 closes the batch of offset 0: the sink throws with two entries consumed.
    expect(() => ring.resetWalk(batch, failing, 0)).toThrow('wedged');
    expect(ring.resetIndexShared).toBe(2);
    expect(ring.used()).toBe(2);
    const seen: number[] = [];
    const sink = (_s: number, lo: number): void => {
      seen.push(lo);
    };
    expect(ring.resetWalk(batch, sink, 0)).toBe(2);
    expect(seen).toEqual([2000, 3000]);
    expect(ring.used()).toBe(0);
  });
});

describe('ring invariants', () => {
  afterEach(() => clearStepHook());
  const noop = (): void => {};

  it('a buffer that is not a power-of-two number of 16-byte entries is refused', () => {
    const vcpu = new SharedBlock(VcpuLayout);
    for (const bytes of [100 * 16, 256 * 16 + 8, 0]) {
      expect(() => new DirtyRing(new SharedArrayBuffer(bytes), vcpu, { onOverflow: noop })).toThrow(AssertionError);
    }
    expect(new DirtyRing(new SharedArrayBuffer(256 * 16), vcpu, { onOverflow: noop }).size).toBe(256);
  });

  it('a ring needs an overflow handler, and a reserve smaller than itself', () => {
    const vcpu = new SharedBlock(VcpuLayout);
    const buffer = new SharedArrayBuffer(256 * 16);
    expect(() => new DirtyRing(buffer, vcpu, {} as DirtyRingOptions)).toThrow(AssertionError);
    expect(() => new DirtyRing(buffer, vcpu, { onOverflow: noop, reservedEntries: 256 })).toThrow(AssertionError);
  });

  it('a push into a full ring is never silent: the handler is called for each such push', () => {
    let warnings = 0;
    const ring = bareRing(256, 0, () => warnings++);
    for (let i = 0; i < 256; i++) ring.push(encodeSlot(0, 1), i, 0);
    expect(warnings).toBe(0);
    ring.push(encodeSlot(0, 1), 256, 0);
    ring.push(encodeSlot(0, 1), 257, 0);
    expect(warnings).toBe(2);
    expect(ring.used()).toBe(258);
  });

  it.runIf(debugChecks)('debug: a push after another writer moved dirty_index fails', () => {
    const ring = bareRing(256);
    ring.push(encodeSlot(0, 1), 1, 0);
    Atomics.store(ring.vcpu.i32, V.DIRTY_INDEX, 7); // a second pusher for the same ring
    expect(() => ring.push(encodeSlot(0, 1), 2, 0)).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('debug: a push that leaves more than size entries without a warning fails', () => {
    const ring = bareRing(256);
    for (let i = 0; i < 10; i++) ring.push(encodeSlot(0, 1), i, 0);
    // reset_index corrupted to 300 entries behind, after the push checked for room.
    installStepHook((step) => {
      if (step === Step.PUSH_ADVANCE) Atomics.store(ring.vcpu.i32, V.RESET_INDEX, (10 - 300) | 0);
    });
    expect(() => ring.push(encodeSlot(0, 1), 10, 0)).toThrow(AssertionError);
  });

  it.runIf(debugChecks)('debug: a reset walk during which reset_index moved fails', () => {
    const ring = bareRing(256);
    for (let i = 0; i < 4; i++) ring.push(encodeSlot(0, 1), i, 0);
    for (let i = 0; i < 4; i++) Atomics.store(ring.i32, i * DIRTY_GFN_WORDS, KVM_DIRTY_GFN_F_RESET);
    installStepHook((step, index) => {
      if (step === Step.RESET_ENTRY && index === 2) Atomics.store(ring.vcpu.i32, V.RESET_INDEX, 1); // a second walker
    });
    expect(() => ring.resetWalk(new ResetBatch(), noop, 0)).toThrow(AssertionError);
  });

  it('the walk check: reset_index unmoved by others, and advanced by exactly the entries consumed', () => {
    expect(() => checkResetAdvance(10, 10, 14, 4)).not.toThrow();
    expect(() => checkResetAdvance(0xfffffffe, 0xfffffffe, 2, 4)).not.toThrow(); // u32 wrap
    expect(() => checkResetAdvance(10, 11, 14, 4)).toThrow(AssertionError);
    expect(() => checkResetAdvance(10, 10, 14, 3)).toThrow(AssertionError);
  });
});
