/**
 * The dirty ring's own code (push, harvest, the reset ioctl) under the weak memory model, in
 * one thread: three model threads — userspace U (0), the vCPU V (1) and a resetter R (2) —
 * take turns by switching `mem.thread`, and the step hook interleaves them inside the reset
 * walk. This is the 2022 shape: V pushes a and b, U harvests them and hands the ioctl to R,
 * R walks the first entry; meanwhile V pushes c and U harvests c and marks it RESET; then R
 * reaches c's entry and reads its payload.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING, KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_DIRTY_GFN_F_RESET } from '../../../../src/abi/constants.js';
import { HarvestOrdering, harvestRing } from '../../../../src/kernel/dirty-ring.js';
import { SpteBits } from '../../../../src/kernel/memslot-layout.js';
import { Step, clearStepHook, installStepHook } from '../../../../src/kernel/step-hook.js';
import { Vm } from '../../../../src/kernel/vm.js';
import { WmmLocations } from '../../../../src/kernel/wmm/locations.js';
import { mem } from '../../../../src/kernel/wmm/mem.js';
import { WeakModel, allocateWmmState } from '../../../../src/kernel/wmm/model.js';
import { type MemoryModel, profileOf } from '../../../../src/kernel/wmm/ordering.js';

const U = 0;
const V = 1;
const R = 2;
const PAGES = { a: 1, b: 2, c: 5 } as const;

afterEach(() => {
  mem.uninstall();
  clearStepHook();
});

interface Case {
  readonly profile: Exclude<MemoryModel, 'sc'>;
  readonly cap: number;
  readonly harvest: number;
}

interface Outcome {
  /** Candidate counts of R's loads of c's entry: slot, offset. */
  readonly candidates: number[];
  /** Whether c's SPTE is still writable after the reset (its entry consumed). */
  readonly cStillWritable: boolean;
  readonly reset: number;
}

/** Run the 2022 interleaving; R's loads of c's payload read candidate `stale` when they can. */
function run2022(c: Case, stale: number): Outcome {
  mem.uninstall();
  clearStepHook();
  const vm = Vm.create();
  vm.enableCap(c.cap, 4096);
  const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: 8, logDirty: true });
  vm.createVcpu();
  // The pages the vCPU faulted on are writable (before the model starts: its time 0).
  for (const p of Object.values(PAGES)) Atomics.or(slot.spte, p, SpteBits.WRITABLE);
  const locs = new WmmLocations(vm);
  const handOff = locs.addSyncWord(new Int32Array(new SharedArrayBuffer(4)), 0);
  const model = new WeakModel(
    allocateWmmState({ threads: 3, history: 8, profile: profileOf(c.profile), cumulative: true, locations: locs.locations, syncObjects: locs.syncCount, eventCapacity: 256 }),
  );
  const ring = vm.ring(0)!;
  const base = locs.bases.get(ring.i32.buffer)!.get(ring.i32.byteOffset)!;
  const cSlot = base + ring.size + 2;
  const cOffset = base + 2 * ring.size + 2;
  const candidates: number[] = [];
  mem.install({
    model,
    thread: V,
    bases: locs.bases,
    syncObjects: locs.syncObjects,
    decide: (loc, n) => {
      if (mem.thread === R && (loc === cSlot || loc === cOffset)) {
        candidates.push(n);
        return Math.min(stale, n - 1);
      }
      return 0;
    },
  });
  const views = vm.mmapRing(0);
  const cursor = { fetchIndex: 0 };
  const as = (t: number, fn: () => void): void => {
    const was = mem.thread;
    mem.thread = t;
    fn();
    mem.thread = was;
  };
  as(V, () => {
    ring.push(slot.encodedSlot, PAGES.a, 0);
    ring.push(slot.encodedSlot, PAGES.b, 0);
  });
  as(U, () => expect(harvestRing(views, cursor, 100, () => {}, KVM_DIRTY_GFN_F_RESET, c.harvest)).toBe(2));
  // "do ioctl!": R starts with everything U did so far.
  model.syncRelease(U, handOff);
  model.syncAcquire(R, handOff);
  let interleaved = false;
  installStepHook((step, a) => {
    if (step !== Step.RESET_ENTRY || a !== 1 || interleaved) return;
    interleaved = true;
    as(V, () => ring.push(slot.encodedSlot, PAGES.c, 0));
    as(U, () => expect(harvestRing(views, cursor, 100, () => {}, KVM_DIRTY_GFN_F_RESET, c.harvest)).toBe(1));
  });
  let reset = 0;
  as(R, () => (reset = vm.resetDirtyRings()));
  return { candidates, cStillWritable: (Atomics.load(slot.spte, PAGES.c) & SpteBits.WRITABLE) !== 0, reset };
}

const RELAXED_RESET = HarvestOrdering.RELAXED_RESET;
const ACQ_REL = HarvestOrdering.ACQ_REL;

describe('the 2022 reset race on the real ring code', () => {
  it('arm64, ACQ_REL kernel, QEMU before its fix (plain RESET store): the walk may read c\'s payload stale and leave c writable', () => {
    const c = { profile: 'arm64', cap: KVM_CAP_DIRTY_LOG_RING_ACQ_REL, harvest: RELAXED_RESET } as const;
    const newest = run2022(c, 0);
    expect(newest.candidates).toEqual([2, 2]);
    expect(newest.cStillWritable).toBe(false);
    const stale = run2022(c, 1);
    expect(stale.reset).toBe(3);
    expect(stale.cStillWritable).toBe(true);
  });

  it('arm64, pre-2022 kernel (KVM_CAP_DIRTY_LOG_RING: plain flags load), even with a release harvester', () => {
    const stale = run2022({ profile: 'arm64', cap: KVM_CAP_DIRTY_LOG_RING, harvest: ACQ_REL }, 1);
    expect(stale.candidates).toEqual([2, 2]);
    expect(stale.cStillWritable).toBe(true);
  });

  it('arm64 with ACQ_REL on both sides: the release/acquire chain leaves the walk one choice, the fresh payload', () => {
    const r = run2022({ profile: 'arm64', cap: KVM_CAP_DIRTY_LOG_RING_ACQ_REL, harvest: ACQ_REL }, 1);
    expect(r.candidates).toEqual([]);
    expect(r.cStillWritable).toBe(false);
  });

  it('x86 (TSO): plain stores release and plain loads acquire, so even the pre-2022 code is right', () => {
    const r = run2022({ profile: 'x86', cap: KVM_CAP_DIRTY_LOG_RING, harvest: RELAXED_RESET }, 1);
    expect(r.candidates).toEqual([]);
    expect(r.cStillWritable).toBe(false);
  });
});
