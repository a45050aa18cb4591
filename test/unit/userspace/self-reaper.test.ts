import { describe, expect, it } from 'vitest';
import { KVM_DIRTY_GFN_F_DIRTY, KVM_EXIT_DIRTY_RING_FULL, KVM_EXIT_HLT, encodeSlot } from '../../../src/abi/constants.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { writeRawEntry } from '../../../src/kernel/dirty-ring.js';
import { SharedReaper } from '../../../src/userspace/self-reaper.js';
import { StallRecorder } from '../../../src/userspace/stall-recorder.js';
import { gfns, range, ringVm } from '../../helpers/vm-fixtures.js';

function drained(reaper: SharedReaper): [number, number][] {
  const out: [number, number][] = [];
  reaper.drain((slot, off) => out.push([slot, off]));
  return out;
}

describe('SharedReaper', () => {
  it('reaps one vCPU ring into the bitmap, resets it, and drains each page once', () => {
    const f = ringVm({ ringEntries: 256, pages: 1024 });
    const buffers = SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 1024 }]);
    const reaper = new SharedReaper(f.vm, buffers);
    f.programs[0]!.enqueue(gfns([5, 9, 700, 5]));
    expect(f.vcpus[0]!.run(f.programs[0]!)).toBe(KVM_EXIT_HLT);
    expect(f.vm.ring(0)!.used()).toBe(3); // page 5 stays writable: one entry per page
    expect(reaper.reap(0)).toBe(3);
    expect(f.vm.ring(0)!.used()).toBe(0);
    for (const p of [5, 9, 700]) expect(Atomics.load(f.slot.spte, p) & SpteBits.WRITABLE).toBe(0);
    expect(drained(reaper)).toEqual([
      [f.slot.encodedSlot, 5],
      [f.slot.encodedSlot, 9],
      [f.slot.encodedSlot, 700],
    ]);
    expect(drained(reaper)).toEqual([]);
    expect(reaper.stats()).toMatchObject({ harvested: 3, resets: 1, entriesReset: 3, mismatches: 0, badEntries: 0, reaps: 1 });
    expect(reaper.reap(0)).toBe(0);
    expect(reaper.stats()).toMatchObject({ resets: 1, reaps: 2 });
  });

  it('lets a vCPU on exit 31 reap its ring and run on, with every page recorded', () => {
    const f = ringVm({ ringEntries: 256, pages: 1024 });
    const reaper = new SharedReaper(f.vm, SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 1024 }]));
    f.programs[0]!.enqueue(gfns(range(0, 600)));
    let exits = 0;
    for (;;) {
      const exit = f.vcpus[0]!.run(f.programs[0]!);
      if (exit === KVM_EXIT_HLT) break;
      expect(exit).toBe(KVM_EXIT_DIRTY_RING_FULL);
      exits++;
      reaper.reap(0);
    }
    reaper.reap(-1);
    expect(exits).toBe(3); // at 192, 384 and 576 entries
    expect(drained(reaper).map(([, o]) => o)).toEqual(range(0, 600));
    // The store interrupted by each exit faults again after the reset re-protected its page.
    expect(reaper.stats()).toMatchObject({ harvested: 603, entriesReset: 603, mismatches: 0 });
  });

  it('shares each ring fetch index between reapers on the same buffers (one per thread)', () => {
    const f = ringVm({ ringEntries: 256, pages: 1024, vcpus: 2 });
    const buffers = SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 1024 }]);
    const vcpuSide = new SharedReaper(f.vm, buffers);
    const userspace = new SharedReaper(f.vm, buffers);
    f.programs[0]!.enqueue(gfns([1, 2]));
    f.programs[1]!.enqueue(gfns([3]));
    f.vcpus[0]!.run(f.programs[0]!);
    f.vcpus[1]!.run(f.programs[1]!);
    expect(vcpuSide.reap(0)).toBe(2);
    f.programs[0]!.enqueue(gfns([4]));
    f.vcpus[0]!.run(f.programs[0]!);
    expect(userspace.reap(-1)).toBe(2); // page 4 from vCPU 0, page 3 from vCPU 1; not 1 and 2 again
    expect(drained(userspace).map(([, o]) => o)).toEqual([1, 2, 3, 4]);
    expect(userspace.stats()).toMatchObject({ harvested: 4, resets: 2, entriesReset: 4, mismatches: 0 });
  });

  it('counts entries for unknown slots or pages past the end as bad, and still resets them', () => {
    const f = ringVm({ ringEntries: 256, pages: 64 });
    const reaper = new SharedReaper(f.vm, SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 64 }]));
    const ring = f.vm.mmapRing(0);
    writeRawEntry(ring, 0, KVM_DIRTY_GFN_F_DIRTY, encodeSlot(0, 9), 3n);
    writeRawEntry(ring, 1, KVM_DIRTY_GFN_F_DIRTY, f.slot.encodedSlot, 64n);
    writeRawEntry(ring, 2, KVM_DIRTY_GFN_F_DIRTY, f.slot.encodedSlot, 2n ** 40n);
    expect(reaper.reap(0)).toBe(3);
    expect(drained(reaper)).toEqual([]);
    expect(reaper.stats()).toMatchObject({ harvested: 3, badEntries: 3, entriesReset: 3, mismatches: 0 });
  });
});

describe('SharedReaper: the userspace collector\'s known bugs', () => {
  it('harvest-skips-entry: every Nth entry is reset but never recorded', () => {
    const f = ringVm({ ringEntries: 256, pages: 1024 });
    const reaper = new SharedReaper(f.vm, SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 1024 }], 4));
    f.programs[0]!.enqueue(gfns(range(0, 10)));
    expect(f.vcpus[0]!.run(f.programs[0]!)).toBe(KVM_EXIT_HLT);
    expect(reaper.reap(0)).toBe(10);
    expect(drained(reaper).map(([, o]) => o)).toEqual([0, 1, 2, 4, 5, 6, 8, 9]); // the 4th and 8th dropped
    expect(reaper.stats()).toMatchObject({ harvested: 10, entriesReset: 10, mismatches: 0 });
    for (const p of [3, 7]) expect(Atomics.load(f.slot.spte, p) & SpteBits.WRITABLE).toBe(0);
  });

  it('copy-before-reset: the pages go to the sink while still writable, then the reset', () => {
    const f = ringVm({ ringEntries: 256, pages: 1024 });
    const reaper = new SharedReaper(f.vm, SharedReaper.createBuffers([{ encodedSlot: f.slot.encodedSlot, pageCount: 1024 }]));
    f.programs[0]!.enqueue(gfns([5, 9]));
    expect(f.vcpus[0]!.run(f.programs[0]!)).toBe(KVM_EXIT_HLT);
    const writableAtCopy: boolean[] = [];
    const n = reaper.reapCopyingBeforeReset((_slot, off) => writableAtCopy.push((Atomics.load(f.slot.spte, off) & SpteBits.WRITABLE) !== 0));
    expect(n).toBe(2);
    expect(writableAtCopy).toEqual([true, true]);
    expect(f.vm.ring(0)!.used()).toBe(0);
    expect(drained(reaper)).toEqual([]);
    expect(reaper.stats()).toMatchObject({ harvested: 2, resets: 1, entriesReset: 2, mismatches: 0 });
  });
});

describe('StallRecorder', () => {
  it('keeps the last `capacity` samples in order', () => {
    const buf = StallRecorder.createBuffer(3);
    const writer = new StallRecorder(buf);
    const reader = new StallRecorder(buf);
    expect(reader.samples()).toEqual([]);
    for (const ns of [10, 20, 30, 40, 50]) writer.record(ns);
    expect(reader.recorded).toBe(5);
    expect(reader.samples()).toEqual([30, 40, 50]);
    expect(reader.samples(4)).toEqual([50]);
    expect(() => StallRecorder.createBuffer(0)).toThrow(RangeError);
  });
});

describe('run config: selfReap', () => {
  it('defaults to on with ring logging, off otherwise; the hand-off stays selectable', async () => {
    const { validateRunConfig } = await import('../../../src/harness/run-config.js');
    const { ConfigError } = await import('../../../src/base/config-error.js');
    const { Mutant } = await import('../../../src/userspace/known-bugs.js');
    expect(validateRunConfig({ seed: 1 }).selfReap).toBe(true);
    expect(validateRunConfig({ seed: 1, log: 'bitmap' }).selfReap).toBe(false);
    expect(validateRunConfig({ seed: 1, selfReap: false }).selfReap).toBe(false);
    expect(() => validateRunConfig({ seed: 1, log: 'clear', selfReap: true })).toThrow(ConfigError);
    // The userspace collector's mutants are modelled by the reaper too (below), so both designs take them.
    expect(validateRunConfig({ seed: 1, mutants: Mutant.HARVEST_SKIPS_ENTRY }).selfReap).toBe(true);
  });
});
