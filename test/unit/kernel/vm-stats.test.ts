/** The VM-wide statistics and how each ioctl charges its mmu_lock holds. */
import { describe, expect, it } from 'vitest';
import { SharedMutex } from '../../../src/kernel/sync.js';
import { Vm } from '../../../src/kernel/vm.js';
import { chargeMmuHold, readVmStats } from '../../../src/kernel/vm-stats.js';
import { VmLayout } from '../../../src/kernel/vm-layout.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { gfns, range, ringVm } from '../../helpers/vm-fixtures.js';
import { bitmapVm } from './bitmap-fixtures.js';

describe('mmu_lock hold times per ioctl', () => {
  it('are recorded for GET, CLEAR and reset', () => {
    const { vm, store, get, clear } = bitmapVm({ manual: 1 });
    store(1, 2, 3);
    get();
    clear(0, 64, [1, 2, 3]);
    const st = vm.stats();
    expect(st.clearCalls).toBe(1);
    expect(st.mmuHoldClearMaxUs).toBeGreaterThan(0);
    const legacy = bitmapVm();
    legacy.store(4);
    legacy.get();
    expect(legacy.vm.stats().mmuHoldGetMaxUs).toBeGreaterThan(0);
  });
});

describe("a reset's mmu_lock hold", () => {
  it('has its maximum per call, summed over the batches, so the mean never exceeds it', () => {
    const fx = ringVm({ ringEntries: 4096, pages: 65536 });
    for (let round = 0; round < 3; round++) {
      // Pages 64 apart: one batch (one mmu_lock hold) each, 400 batches in one reset.
      fx.programs[0]!.enqueue(gfns(range(0, 400).map((i) => i * 64 + round)));
      fx.vcpus[0]!.run(fx.programs[0]!);
      const cursor = { fetchIndex: round * 400 };
      const views = fx.vm.mmapRing(0);
      harvestRing(views, cursor, 1 << 20, () => undefined);
      expect(fx.vm.resetDirtyRings()).toBe(400);
      const st = fx.vm.stats();
      if (round === 0) expect(st.mmuHoldResetMaxUs).toBe(st.mmuHoldResetTotalUs);
      expect(st.mmuHoldResetTotalUs / st.resetCalls).toBeLessThanOrEqual(st.mmuHoldResetMaxUs);
      expect(st.mmuHoldResetTotalUs).toBeGreaterThan(0);
    }
  });
});

describe('chargeMmuHold', () => {
  it("adds the hold's share to the kind's total and keeps the longest measured hold as its maximum", () => {
    const f64 = new Float64Array(VmLayout.floatCount);
    const lock = new SharedMutex(new Int32Array(new SharedArrayBuffer(4)), 0, 'test');
    lock.lastHoldNs = 800;
    lock.lastHoldMeasuredNs = 100;
    chargeMmuHold(f64, lock, VmLayout.floats.MMU_HOLD_RESET_TOTAL_NS, VmLayout.floats.MMU_HOLD_RESET_MAX_NS);
    lock.lastHoldNs = 0; // an unsampled hold: counts nothing, changes no maximum
    lock.lastHoldMeasuredNs = 0;
    chargeMmuHold(f64, lock, VmLayout.floats.MMU_HOLD_RESET_TOTAL_NS, VmLayout.floats.MMU_HOLD_RESET_MAX_NS);
    expect(f64[VmLayout.floats.MMU_HOLD_RESET_TOTAL_NS]).toBe(800);
    expect(f64[VmLayout.floats.MMU_HOLD_RESET_MAX_NS]).toBe(100);
    expect(f64[VmLayout.floats.MMU_HOLD_GET_TOTAL_NS]).toBe(0);
  });

  it('readVmStats reports them in µs, alongside the warning count', () => {
    const vm = Vm.create();
    vm.block.f64[VmLayout.floats.MMU_HOLD_CLEAR_TOTAL_NS] = 2500;
    vm.warn();
    expect(readVmStats(vm)).toMatchObject({ mmuHoldClearTotalUs: 2.5, warnings: 1 });
    expect(vm.stats()).toEqual(readVmStats(vm));
  });
});
