/**
 * A user harvester's runs record the ring.harvest.* edge states the built-in harvest loop
 * records: a flags load that finds an entry DIRTY is its harvest (first entry, last entry, and
 * an index past the first lap); a load that finds it clean or RESET records nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester } from '../../../src/harvester/contract.js';
import { UserHarvesterCollector } from '../../../src/harvester/user-collector.js';
import { RingSide, clearCoverage, coverageBuffer, installCoverage, sumCoverage } from '../../../src/kernel/coverage.js';
import { gfns, range, ringVm } from '../../helpers/vm-fixtures.js';

afterEach(() => clearCoverage());

describe('ring.harvest.* from a user harvester', () => {
  it('first and last entry, then a lap', () => {
    const buffer = coverageBuffer(1);
    installCoverage(buffer, 0);
    const fx = ringVm({ ringEntries: 256, pages: 1024 });
    const reaper = defineHarvester({
      name: 'reaper',
      log: 'ring',
      create(kvm) {
        const ring = kvm.ring(0);
        let i = ring.startIndex;
        return {
          collect() {
            while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) ring.storeResetRelease(i++);
            kvm.resetDirtyRings();
          },
        };
      },
    });
    const c = new UserHarvesterCollector(reaper, fx.vm, 1, [fx.slot]);
    const counts = (): number[] => Array.from(sumCoverage(buffer).subarray(RingSide.HARVEST, RingSide.HARVEST + 3));
    c.collect(() => {}, false); // nothing pushed: nothing harvested
    expect(counts()).toEqual([0, 0, 0]);
    fx.programs[0]!.enqueue(gfns(range(0, 200)));
    fx.vcpus[0]!.run(fx.programs[0]!);
    c.collect(() => {}, false); // entries 0..199
    expect(counts()).toEqual([1, 0, 0]);
    fx.programs[0]!.enqueue(gfns(range(300, 200)));
    fx.vcpus[0]!.run(fx.programs[0]!);
    c.collect(() => {}, false); // entries 200..399: the last entry, then the second lap
    const [, last, lap] = counts();
    expect(last).toBe(1);
    expect(lap).toBeGreaterThan(0);
  });
});
