/**
 * Coverage recording (src/kernel/coverage.ts), driven in this thread: each edge state is
 * counted where it happens, and only while this thread records.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  SMM_AS_ID,
  encodeSlot,
} from '../../../src/abi/constants.js';
import { CoverageLayout, type EdgeName } from '../../../src/kernel/coverage-layout.js';
import { clearCoverage, coverage, coverageBuffer, installCoverage, sumCoverage } from '../../../src/kernel/coverage.js';
import { bitmapWords, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { ResetBatch } from '../../../src/kernel/reset-batch.js';
import { Step, clearStepHook, installStepHook, stepHook } from '../../../src/kernel/step-hook.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../helpers/vm-fixtures.js';

const E = CoverageLayout.floats;

let buffer: SharedArrayBuffer;

/** The counts recorded in this thread so far, by edge name. */
function counts(): Record<EdgeName, number> {
  const sum = sumCoverage(buffer);
  return Object.fromEntries(Object.entries(E).map(([name, i]) => [name, sum[i]!])) as Record<EdgeName, number>;
}

function reached(): EdgeName[] {
  return (Object.entries(counts()) as [EdgeName, number][]).filter(([, n]) => n > 0).map(([name]) => name);
}

beforeEach(() => {
  buffer = coverageBuffer(1);
  installCoverage(buffer, 0);
});
afterEach(() => {
  clearStepHook();
  clearCoverage();
});

/** Harvest vCPU 0's ring of `vm` from `cursor`, at most `max` entries. */
function harvest(vm: Vm, cursor: { fetchIndex: number }, max = 1 << 20): number {
  return harvestRing(vm.mmapRing(0), cursor, max, () => {});
}

describe('recording on and off', () => {
  it('pins the step points while it records, and records nothing once cleared', () => {
    expect(stepHook.active).toBe(true);
    clearCoverage();
    expect(stepHook.active).toBe(false);
    expect(coverage.active).toBe(false);
    const fx = ringVm({ ringEntries: 256 });
    fx.programs[0]!.enqueue(gfns(range(0, 10)));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(reached()).toEqual([]);
  });

  it('sums the blocks of every thread of a buffer', () => {
    const two = coverageBuffer(2);
    new Float64Array(two, CoverageLayout.bytes, CoverageLayout.floatCount)[E.RING_SOFT_FULL] = 2;
    new Float64Array(two, 0, CoverageLayout.floatCount)[E.RING_SOFT_FULL] = 3;
    expect(sumCoverage(two)[E.RING_SOFT_FULL]).toBe(5);
  });
});

describe('ring entries', () => {
  it('counts the first and last entry and the lap on each side, soft-full, and a reset stopping mid-ring', () => {
    const fx = ringVm({ ringEntries: 256, pages: 1024 });
    const [vm, vcpu, prog] = [fx.vm, fx.vcpus[0]!, fx.programs[0]!];
    const cursor = { fetchIndex: 0 };
    prog.enqueue(gfns(range(0, 200)));
    vcpu.run(prog); // soft-full at 192
    expect(counts().RING_SOFT_FULL).toBeGreaterThan(0);
    expect(counts().RING_PUSH_FIRST).toBe(1);
    // Harvest 100 of 192 and reset: the walk stops at entry 100 with pushed entries behind it.
    harvest(vm, cursor, 100);
    expect(vm.resetDirtyRings()).toBe(100);
    expect(counts().RING_RESET_MID_RING).toBe(1);
    harvest(vm, cursor);
    vm.resetDirtyRings();
    expect(counts().RING_RESET_MID_RING).toBe(1);
    expect(counts().RING_PUSH_LAST).toBe(0);
    prog.enqueue(gfns(range(200, 100)));
    vcpu.run(prog);
    harvest(vm, cursor);
    vm.resetDirtyRings();
    const c = counts();
    for (const side of ['PUSH', 'HARVEST', 'RESET'] as const) {
      expect(c[`RING_${side}_FIRST`], side).toBe(2);
      expect(c[`RING_${side}_LAST`], side).toBe(1);
      expect(c[`RING_${side}_LAP`], side).toBeGreaterThan(0);
    }
  });
});

describe('the reset walk', () => {
  it('tells forward and backward merges and both kinds of break apart (a duplicate counts as nothing)', () => {
    const batch = new ResetBatch();
    const sink = (): void => {};
    const steps: [number, number, EdgeName | null][] = [
      [1, 10, null],
      [1, 12, 'COALESCE_FORWARD'],
      [1, 12, null],
      [1, 5, 'COALESCE_BACKWARD'],
      [1, 200, 'COALESCE_BREAK_FAR'],
      [2, 200, 'COALESCE_BREAK_SLOT'],
    ];
    for (const [slot, off, edge] of steps) {
      const before = counts();
      batch.add(slot, off, 0, sink);
      const after = counts();
      const changed = (Object.keys(after) as EdgeName[]).filter((k) => after[k] !== before[k]);
      expect(changed, `entry (${slot}, ${off})`).toEqual(edge === null ? [] : [edge]);
    }
  });

  it('counts a batch whose mask uses the high half', () => {
    const fx = ringVm({ ringEntries: 256 });
    fx.programs[0]!.enqueue(gfns([3, 40]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    harvest(fx.vm, { fetchIndex: 0 });
    fx.vm.resetDirtyRings();
    expect(counts().COALESCE_MASK_HIGH).toBe(1);
    expect(counts().COALESCE_FORWARD).toBe(1);
  });
});

/** A bitmap VM of two slots (130 and 70 pages), manual protect when `manual`. */
function bitmapVm(manual: boolean) {
  const vm = Vm.create();
  if (manual) vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
  const a = vm.createMemslot({ id: 1, baseGfn: SLOT_GFN, pageCount: 130, logDirty: true });
  const b = vm.createMemslot({ id: 2, baseGfn: SLOT_GFN + 130, pageCount: 70, logDirty: true });
  vm.createVcpu();
  const vcpu = new Vcpu(vm, 0);
  const store = (...pages: number[]): void => {
    vcpu.run(new ScriptedProgram().enqueue(pages.map((p) => SLOT_GFN + p)));
  };
  return { vm, a, b, store };
}

describe('bitmaps', () => {
  it('legacy GET: halves, first and last word, the odd tail; set: both halves; a second slot', () => {
    const { vm, store } = bitmapVm(false);
    store(3);
    expect(reached()).toEqual(['BITMAP_SET_LOW']);
    store(40, 129, 131);
    vm.getDirtyLog(encodeSlot(0, 1), new Uint32Array(bitmapWords(130)));
    const c = counts();
    expect(c.BITMAP_SET_HIGH).toBe(1);
    expect(c.MEMSLOT_SECOND).toBe(1);
    // Words 0 (pages 0-31), 1 (32-63) and 4 (128-129: the short last 64-page word).
    expect([c.BITMAP_GET_LOW, c.BITMAP_GET_HIGH, c.BITMAP_GET_FIRST_WORD, c.BITMAP_GET_LAST_WORD, c.BITMAP_GET_ODD_TAIL]).toEqual([2, 1, 2, 1, 1]);
  });

  it('CLEAR: its words, and a chunk boundary on each side and a chunk at the slot end', () => {
    const { vm, store } = bitmapVm(true);
    store(63, 64, 100, 129);
    const slot = encodeSlot(0, 1);
    vm.clearDirtyLog(slot, 0, 64, maskFromPages(64, [63]));
    let c = counts();
    expect([c.BITMAP_CLEAR_HIGH, c.BITMAP_CLEAR_FIRST_WORD, c.CLEAR_CHUNK_LAST_PAGE, c.CLEAR_CHUNK_FIRST_PAGE]).toEqual([1, 1, 1, 0]);
    vm.clearDirtyLog(slot, 64, 66, maskFromPages(66, [0, 36, 65]));
    c = counts();
    expect([c.CLEAR_CHUNK_FIRST_PAGE, c.CLEAR_SLOT_END_CHUNK, c.BITMAP_CLEAR_LAST_WORD, c.BITMAP_CLEAR_ODD_TAIL]).toEqual([1, 3, 1, 1]);
  });
});

describe('address spaces and the TLB', () => {
  it('records and re-protections of an SMM memslot', () => {
    const vm = Vm.create({ smm: true });
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 256 * 16);
    vm.createMemslot({ id: 1, baseGfn: SLOT_GFN, pageCount: 16, logDirty: true });
    vm.createMemslot({ id: 1, asId: SMM_AS_ID, baseGfn: SLOT_GFN + 16, pageCount: 16, logDirty: true });
    vm.createVcpu();
    new Vcpu(vm, 0).run(new ScriptedProgram().enqueueSmm(true).enqueue([SLOT_GFN + 17]).enqueueSmm(false));
    harvest(vm, { fetchIndex: 0 });
    vm.resetDirtyRings();
    expect(counts().SMM_RECORD).toBe(1);
    expect(counts().SMM_REPROTECT).toBe(1);
    expect(counts().MEMSLOT_SECOND).toBe(0);
  });

  it('a store through a stale TLB entry while a flush waits for the vCPU', () => {
    const fx = ringVm({ ringEntries: 256 });
    const vcpu = fx.vcpus[0]!;
    const requests = fx.vm.vcpuBlock(0).i32;
    let stores = 0;
    installStepHook((step) => {
      // Another thread, between the vCPU's TLB hit and its store: re-protect, post the flush.
      if (step === Step.GUEST_STORE && ++stores === 2) {
        Atomics.and(fx.slot.spte, 5, ~SpteBits.WRITABLE);
        Atomics.or(requests, VcpuLayout.words.REQUESTS, VcpuRequest.TLB_FLUSH);
      }
    });
    vcpu.run(fx.programs[0]!.enqueue(gfns([5, 5])));
    expect(counts().TLB_STALE_STORE_FLUSH_WAITS).toBe(1);
  });

  it('a tracked store, and an exit for a full notification ring', () => {
    const fx = ringVm({ ringEntries: 256 });
    fx.vm.pageTrack.addGfn(SLOT_GFN + 2);
    fx.vcpus[0]!.run(fx.programs[0]!.enqueue(gfns([2])));
    expect(counts().TRACK_STORE).toBe(1);
    Atomics.or(fx.vm.vcpuBlock(0).i32, VcpuLayout.words.REQUESTS, VcpuRequest.TRACK_RING_FULL);
    fx.vcpus[0]!.run(fx.programs[0]!.enqueue(gfns([3])));
    expect(counts().TRACK_RING_FULL_EXIT).toBe(1);
  });
});
