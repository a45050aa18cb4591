import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_DIRTY_GFN_F_DIRTY,
  KVM_DIRTY_GFN_F_RESET,
  encodeSlot,
} from '../../../src/abi/constants.js';
import { DIRTY_GFN_WORDS } from '../../../src/abi/dirty-gfn.js';
import { SharedBlock } from '../../../src/abi/layout.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';
import {
  DirtyRing,
  ResetBatch,
  harvestRing,
  highestBit,
  validateRingBytes,
  writeRawEntry,
} from '../../../src/kernel/dirty-ring.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { ringVm } from '../../helpers/vm-fixtures.js';
import { errnoOf } from '../../helpers/errno.js';


function bareRing(entries: number, start = 0): DirtyRing {
  const vcpu = new SharedBlock(VcpuLayout);
  Atomics.store(vcpu.i32, VcpuLayout.words.DIRTY_INDEX, start | 0);
  Atomics.store(vcpu.i32, VcpuLayout.words.RESET_INDEX, start | 0);
  return new DirtyRing(new SharedArrayBuffer(entries * 16), vcpu);
}

describe('ring size validation (kvm-observed.md row 1)', () => {
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

describe('ResetBatch: the kernel coalescing of offsets into 64-bit masks', () => {
  type Batch = [slot: number, offset: number, mask: bigint];
  function coalesce(entries: [number, number | bigint][]): Batch[] {
    const out: Batch[] = [];
    const batch = new ResetBatch();
    const sink = (slot: number, lo: number, hi: number, mlo: number, mhi: number): void => {
      out.push([slot, hi * 2 ** 32 + lo, (BigInt(mhi) << 32n) | BigInt(mlo)]);
    };
    for (const [slot, off] of entries) {
      const o = BigInt.asUintN(64, BigInt(off));
      batch.add(slot, Number(o & 0xffffffffn), Number(o >> 32n), sink);
    }
    batch.finish(sink);
    return out;
  }

  it('forward: offsets within 64 of the batch start share one mask', () => {
    expect(coalesce([[1, 100], [1, 101], [1, 103], [1, 163]])).toEqual([[1, 100, (1n << 63n) | 0b1011n]]);
  });
  it('forward: 64 or more past the start opens a new batch', () => {
    expect(coalesce([[1, 100], [1, 164]])).toEqual([
      [1, 100, 1n],
      [1, 164, 1n],
    ]);
  });
  it('backward: a lower offset moves the batch start down when no bit falls off', () => {
    expect(coalesce([[1, 10], [1, 9], [1, 8]])).toEqual([[1, 8, 0b111n]]);
    expect(coalesce([[1, 100], [1, 150], [1, 90]])).toEqual([[1, 90, (1n << 60n) | (1n << 10n) | 1n]]);
  });
  it('backward: a shift that would lose a set bit flushes instead', () => {
    expect(coalesce([[1, 100], [1, 163], [1, 99]])).toEqual([
      [1, 100, (1n << 63n) | 1n],
      [1, 99, 1n],
    ]);
  });
  it('backward by 64 or more, or a different slot, flushes', () => {
    expect(coalesce([[1, 200], [1, 136]])).toEqual([
      [1, 200, 1n],
      [1, 136, 1n],
    ]);
    expect(coalesce([[1, 5], [2, 6], [1, 7]])).toEqual([
      [1, 5, 1n],
      [2, 6, 1n],
      [1, 7, 1n],
    ]);
  });
  it('duplicates set the same bit', () => {
    expect(coalesce([[1, 5], [1, 5], [1, 6]])).toEqual([[1, 5, 0b11n]]);
  });
  it('u64 wrap: 0xffff…ffc1 then 0 coalesce (delta wraps to 63), as in 577a8d3bae05', () => {
    expect(coalesce([[1, 0xffffffffffffffc1n], [1, 0]])).toEqual([[1, 2 ** 64 - 63, (1n << 63n) | 1n]]);
  });
  it('highestBit is __fls over both halves', () => {
    expect(highestBit(1, 0)).toBe(0);
    expect(highestBit(0x80000000, 0)).toBe(31);
    expect(highestBit(1, 1)).toBe(32);
    expect(highestBit(0, 0x80000000)).toBe(63);
    expect(highestBit(0, 0)).toBe(-1);
  });
});

describe('KVM_RESET_DIRTY_RINGS', () => {
  /** Push `offsets` on vCPU 0's ring as the kernel would, return the ring mapping. */
  function pushed(offsets: number[], opts: Parameters<typeof ringVm>[0] = {}) {
    const fx = ringVm(opts);
    const ring = fx.vm.ring(0)!;
    for (const o of offsets) ring.push(fx.slot.encodedSlot, o, 0);
    return { ...fx, ring, views: fx.vm.mmapRing(0) };
  }
  function markReset(views: ReturnType<typeof pushed>['views'], indices: number[], flags = KVM_DIRTY_GFN_F_RESET) {
    for (const i of indices) Atomics.store(views.i32, i * 4, flags);
  }

  it('EINVAL without a ring', async () => {
    const { Vm } = await import('../../../src/kernel/vm.js');
    expect(errnoOf(() => Vm.create().resetDirtyRings())).toBe('EINVAL');
  });

  it('partial reset: only the entries marked RESET, counted per call', () => {
    const { vm, views } = pushed([...Array(20).keys()]);
    markReset(views, [0, 1, 2, 3, 4]);
    expect(vm.resetDirtyRings()).toBe(5);
    expect(vm.resetDirtyRings()).toBe(0);
    expect(Atomics.load(views.i32, 0)).toBe(0);
    expect(Atomics.load(views.i32, 5 * 4)).toBe(KVM_DIRTY_GFN_F_DIRTY);
  });

  it('stops at the first entry without RESET (the gap), resumes there', () => {
    const { vm, views } = pushed([...Array(10).keys()]);
    markReset(views, [0, 1, 2, 3, 4]);
    expect(vm.resetDirtyRings()).toBe(5);
    markReset(views, [5, 6, 8]);
    expect(vm.resetDirtyRings()).toBe(2);
    expect(Atomics.load(views.i32, 8 * 4)).toBe(KVM_DIRTY_GFN_F_RESET);
    markReset(views, [7]);
    expect(vm.resetDirtyRings()).toBe(2);
  });

  it('flags value 3 (DIRTY|RESET) counts as harvested; a 0 stops the walk', () => {
    const { vm, views } = pushed([1, 2, 3]);
    markReset(views, [0], 3);
    markReset(views, [1], 0);
    markReset(views, [2]);
    expect(vm.resetDirtyRings()).toBe(1);
  });

  it('re-protects exactly the pages named, and flushes TLBs once per call', () => {
    const { vm, slot, views } = pushed([3, 4, 70]);
    for (const p of [3, 4, 5, 70]) Atomics.store(slot.spte, p, 1);
    markReset(views, [0, 1, 2]);
    const flushes = vm.stats().tlbFlushes;
    expect(vm.resetDirtyRings()).toBe(3);
    expect([3, 4, 5, 70].map((p) => Atomics.load(slot.spte, p))).toEqual([0, 0, 1, 0]);
    expect(vm.stats().tlbFlushes).toBe(flushes + 1);
  });

  it('garbage entries are counted and skipped without error (kvm-observed row 4)', () => {
    const { vm, slot, views } = pushed([]);
    Atomics.store(slot.spte, 5, 1);
    writeRawEntry(views, 0, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0xffffffffffn);
    writeRawEntry(views, 1, KVM_DIRTY_GFN_F_RESET, encodeSlot(0, 999), 5n);
    writeRawEntry(views, 2, KVM_DIRTY_GFN_F_RESET, encodeSlot(1, 1), 5n);
    writeRawEntry(views, 3, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 5000n);
    expect(vm.resetDirtyRings()).toBe(4);
    expect(vm.stats().resetBatchesSkipped).toBe(4);
    expect(Atomics.load(slot.spte, 5)).toBe(1);
    expect(vm.stats().kernelBugs).toBe(0);
  });

  it('a bad entry coalesced with good ones makes the whole batch be skipped', () => {
    const { vm, slot, views } = pushed([10, 11]);
    Atomics.store(slot.spte, 10, 1);
    Atomics.store(slot.spte, 11, 1);
    writeRawEntry(views, 2, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1023n + 10n); // past the end, same batch
    markReset(views, [0, 1]);
    expect(vm.resetDirtyRings()).toBe(3);
    // offset 10 + fls(mask) >= npages only if the bad entry joined the batch; it did not
    // (delta 1023 ≥ 64), so 10 and 11 are protected and only the bad batch is skipped.
    expect(Atomics.load(slot.spte, 10)).toBe(0);
    writeRawEntry(views, 3, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1000n);
    writeRawEntry(views, 4, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 1030n); // 1000 + 30 ≥ 1024
    Atomics.store(slot.spte, 1000, 1);
    expect(vm.resetDirtyRings()).toBe(2);
    expect(Atomics.load(slot.spte, 1000)).toBe(1); // skipped with its bad partner
  });

  it('the wrapped offset pair is rejected since 577a8d3bae05, accepted by the pre-2026 check (mutant)', () => {
    for (const mutant of [0, Mutant.RESET_WRAP_CHECK]) {
      const { vm, slot, views } = pushed([], { vm: { mutants: mutant } });
      Atomics.store(slot.spte, 0, 1);
      writeRawEntry(views, 0, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0xffffffffffffffc1n);
      writeRawEntry(views, 1, KVM_DIRTY_GFN_F_RESET, slot.encodedSlot, 0n);
      expect(vm.resetDirtyRings()).toBe(2);
      if (mutant === 0) {
        expect(vm.stats().kernelBugs).toBe(0);
        expect(Atomics.load(slot.spte, 0)).toBe(1);
      } else {
        // The wrapped check passes and the kernel indexes its rmap out of bounds.
        expect(vm.stats().kernelBugs).toBe(1);
        expect(Atomics.load(slot.spte, 0)).toBe(0);
      }
    }
  });

  it('RESET beyond the head is consumed too, and `used` wraps (kvm-observed "beyond head")', () => {
    const { vm, views, ring } = pushed([1]);
    markReset(views, [0, 1, 2]);
    expect(vm.resetDirtyRings()).toBe(3);
    expect(ring.used()).toBe(2 ** 32 - 2);
    expect(ring.isFull()).toBe(true);
  });

  it('a signal pending ends the walk with a partial count; the rest stays for the next reset', () => {
    const { vm, views } = pushed([1, 2, 3, 4]);
    markReset(views, [0, 1, 2, 3]);
    let calls = 0;
    expect(vm.resetDirtyRings(() => ++calls > 2)).toBe(2);
    expect(vm.resetDirtyRings()).toBe(2);
  });

  it('walks every vCPU ring in one call', () => {
    const fx = ringVm({ vcpus: 2 });
    for (let v = 0; v < 2; v++) {
      const ring = fx.vm.ring(v)!;
      for (let i = 0; i < 10; i++) ring.push(fx.slot.encodedSlot, v * 10 + i, 0);
    }
    let harvested = 0;
    for (let v = 0; v < 2; v++) harvested += harvestRing(fx.vm.mmapRing(v), { fetchIndex: 0 }, 100, () => {});
    expect(harvested).toBe(20);
    expect(fx.vm.resetDirtyRings()).toBe(20);
  });

  it('entries for a deleted slot are counted and ignored', () => {
    const { vm, views, slot } = pushed([1, 2, 3, 4, 5, 6, 7, 8]);
    void slot;
    vm.deleteMemslot(1);
    markReset(views, [0, 1, 2, 3, 4, 5, 6, 7]);
    expect(vm.resetDirtyRings()).toBe(8);
    expect(vm.stats().resetBatchesSkipped).toBe(1);
  });

  it('the ring cap number 192 behaves like 223', async () => {
    const { Vm } = await import('../../../src/kernel/vm.js');
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
    expect(vm.ringEntries).toBe(256);
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
