/**
 * The dirty ring under a weak memory model (kernel/wmm): push, reset walk, harvest and raw
 * entry writes with every shared access made through the memory facade, stating the ordering
 * the real code uses. dirty-ring.ts takes these paths only while `mem.active` (controlled runs
 * under the x86 or arm64 profile); otherwise its own Atomics paths run, unchanged.
 *
 * The orderings (virt/kvm/dirty_ring.c, QEMU's accel/kvm, the dirty_log_test selftest):
 *  - push: slot and offset plain, smp_wmb, flags = DIRTY plain, dirty_index++ plain — the same
 *    before and after 2022 ("there's no paired kernel-side reader");
 *  - reset walk with KVM_CAP_DIRTY_LOG_RING_ACQ_REL: smp_load_acquire(flags), READ_ONCE of
 *    slot and offset, smp_store_release(flags, 0); with KVM_CAP_DIRTY_LOG_RING, the pre-2022
 *    code: a plain flags load and a plain flags = 0;
 *  - harvest (userspace): load-acquire of flags, plain reads of slot and offset, store-release
 *    of RESET — unless the harvester is one of the pre-2022 ones that used plain accesses;
 *  - the vCPU reads both indices with READ_ONCE for its soft-full checks.
 *
 * Locations of a ring (numbered from the base of the ring's words, see wmm/locations.ts): flags of
 * entry i at base + i, slot at base + size + i, offset (one 64-bit location) at base + 2·size + i,
 * dirty_index at base + 3·size, reset_index at base + 3·size + 1.
 */
import { INT_MAX, KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET } from '../abi/constants.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords, type RingViews } from '../abi/dirty-gfn.js';
import { Edge, RingSide, coverage, hit, noteRingIndex } from './coverage.js';
import type { ResetBatch, ResetBatchSink } from './reset-batch.js';
import { Step, stepHook } from './step-hook.js';
import { VcpuLayout } from './vcpu-layout.js';
import { mem } from './wmm/mem.js';
import { Access, Barrier } from './wmm/ordering.js';

const W_FLAGS = DirtyGfnWords.FLAGS;
const W_SLOT = DirtyGfnWords.SLOT;
const W_OFF_LO = DirtyGfnWords.OFFSET_LO;
const V_DIRTY_INDEX = VcpuLayout.words.DIRTY_INDEX;
const V_RESET_INDEX = VcpuLayout.words.RESET_INDEX;

/** Userspace's private state for one ring: its free-running fetch index. */
export interface HarvestCursor {
  fetchIndex: number;
}

/** Receives each harvested entry: slot as encoded, offset as u32 halves. */
export type HarvestSink = (slot: number, offLo: number, offHi: number) => void;

/** Userspace harvest orderings (a bitmask): 0 is the acquire/release harvester. */
export const HarvestOrdering = {
  ACQ_REL: 0,
  /** The flags load is plain (dirty_log_test before the 2022 fix): the payload may be stale. */
  RELAXED_FLAGS: 1,
  /** RESET is stored plainly (QEMU before the 2022 fix): the reset walk may see stale payload. */
  RELAXED_RESET: 2,
} as const;

/** What the modelled paths need of a ring (DirtyRing implements it). */
export interface ModelledRing {
  /** The ring's words (possibly inside a larger shared memory: its location base is per byte offset). */
  readonly i32: Int32Array;
  readonly ctl: Int32Array;
  readonly size: number;
  readonly mask: number;
  readonly requestAt: number;
  readonly flagsBeforePayload: boolean;
  /** Mutant push-no-wmb: no smp_wmb between the payload and DIRTY. */
  readonly pushNoWmb: boolean;
  /** The ring was enabled with KVM_CAP_DIRTY_LOG_RING_ACQ_REL. */
  readonly acqRel: boolean;
  /** Mutant reset-relaxed-flags: the ACQ_REL walk loads flags plainly all the same. */
  readonly relaxedResetFlags: boolean;
  readonly onOverflow: () => void;
  dirtyIndex: number;
}

interface RingLocs {
  readonly flags: number;
  readonly slot: number;
  readonly offset: number;
  readonly dirtyIndex: number;
  readonly resetIndex: number;
}

function locsOf(i32: Int32Array, size: number): RingLocs {
  const base = mem.base(i32.buffer, i32.byteOffset);
  return { flags: base, slot: base + size, offset: base + 2 * size, dirtyIndex: base + 3 * size, resetIndex: base + 3 * size + 1 };
}

/** kvm_dirty_ring_push under the model. */
export function modelledPush(r: ModelledRing, slot: number, offLo: number, offHi: number): boolean {
  const l = locsOf(r.i32, r.size);
  const resetIndex = mem.load(r.ctl, V_RESET_INDEX, l.resetIndex, Access.ONCE);
  const di = r.dirtyIndex;
  if (((di - resetIndex) >>> 0) >= r.size) r.onOverflow();
  const idx = di & r.mask;
  const e = idx * DIRTY_GFN_WORDS;
  const i32 = r.i32;
  if (r.flagsBeforePayload) {
    mem.store(i32, e + W_FLAGS, l.flags + idx, KVM_DIRTY_GFN_F_DIRTY, Access.ONCE);
    if (stepHook.active) stepHook.at(Step.PUSH_PUBLISH, di, offLo);
    mem.store(i32, e + W_SLOT, l.slot + idx, slot, Access.ONCE);
    mem.store64(i32, e + W_OFF_LO, l.offset + idx, offLo, offHi, Access.ONCE);
  } else {
    mem.store(i32, e + W_SLOT, l.slot + idx, slot, Access.ONCE);
    mem.store64(i32, e + W_OFF_LO, l.offset + idx, offLo, offHi, Access.ONCE);
    if (stepHook.active) stepHook.at(Step.PUSH_PUBLISH, di, offLo);
    // "Make sure the data is filled in before we publish this to the userspace program."
    if (!r.pushNoWmb) mem.fence(Barrier.WMB);
    mem.store(i32, e + W_FLAGS, l.flags + idx, KVM_DIRTY_GFN_F_DIRTY, Access.ONCE);
  }
  if (stepHook.active) stepHook.at(Step.PUSH_ADVANCE, di, offLo);
  if (coverage.active) noteRingIndex(RingSide.PUSH, di, r.size);
  const next = (di + 1) >>> 0;
  r.dirtyIndex = next;
  mem.store(r.ctl, V_DIRTY_INDEX, l.dirtyIndex, next | 0, Access.ONCE);
  return ((next - resetIndex) >>> 0) >= r.requestAt;
}

/** kvm_dirty_ring_soft_full as the vCPU evaluates it: READ_ONCE of both indices. */
export function modelledSoftFull(r: ModelledRing, softLimit: number): boolean {
  const l = locsOf(r.i32, r.size);
  const di = mem.load(r.ctl, V_DIRTY_INDEX, l.dirtyIndex, Access.ONCE);
  const ri = mem.load(r.ctl, V_RESET_INDEX, l.resetIndex, Access.ONCE);
  return ((di - ri) >>> 0) >= softLimit;
}

/** The reset walk of one ring under the model (see DirtyRing.resetWalk for the rules). */
export function modelledResetWalk(
  r: ModelledRing,
  batch: ResetBatch,
  sink: ResetBatchSink,
  alreadyCleared: number,
  signalPending: (() => boolean) | undefined,
): number {
  const l = locsOf(r.i32, r.size);
  // ACQ_REL: the payload reads come after the flags load, and the entry goes back to the
  // vCPU only after them. Pre-2022 (and the mutant): a plain load and a plain store.
  const loadFlags = r.acqRel && !r.relaxedResetFlags ? Access.ACQUIRE : Access.ONCE;
  const freeEntry = r.acqRel ? Access.RELEASE : Access.ONCE;
  const i32 = r.i32;
  let resetIndex = mem.load(r.ctl, V_RESET_INDEX, l.resetIndex, Access.ONCE) >>> 0;
  let count = 0;
  batch.open = false;
  try {
    while (alreadyCleared + count < INT_MAX) {
      if (signalPending && signalPending()) break;
      const idx = resetIndex & r.mask;
      const e = idx * DIRTY_GFN_WORDS;
      const flags = mem.load(i32, e + W_FLAGS, l.flags + idx, loadFlags);
      if ((flags & KVM_DIRTY_GFN_F_RESET) === 0) break;
      if (stepHook.active) stepHook.at(Step.RESET_ENTRY, resetIndex, 0);
      if (coverage.active) noteRingIndex(RingSide.RESET, resetIndex, r.size);
      const slot = mem.load(i32, e + W_SLOT, l.slot + idx, Access.ONCE) >>> 0;
      const offLo = mem.load64(i32, e + W_OFF_LO, l.offset + idx, Access.ONCE) >>> 0;
      const offHi = mem.hi >>> 0;
      mem.store(i32, e + W_FLAGS, l.flags + idx, 0, freeEntry);
      resetIndex = (resetIndex + 1) >>> 0;
      count++;
      batch.add(slot, offLo, offHi, sink);
    }
  } finally {
    // As in the Atomics path: consumed entries are behind reset_index whatever happens.
    mem.store(r.ctl, V_RESET_INDEX, l.resetIndex, resetIndex | 0, Access.ONCE);
  }
  // Stopped at an entry userspace has not released yet, with pushed entries behind it (the
  // shared dirty_index, not a modelled load: coverage observes, it takes no part in the run).
  if (coverage.active && count > 0 && resetIndex !== Atomics.load(r.ctl, V_DIRTY_INDEX) >>> 0) hit(Edge.RING_RESET_MID_RING);
  batch.finish(sink);
  return count;
}

/** Userspace's harvest loop under the model (see harvestRing for the rules). */
export function modelledHarvest(ring: RingViews, cursor: HarvestCursor, max: number, sink: HarvestSink, resetFlags: number, ordering: number): number {
  const l = locsOf(ring.i32, ring.entryCount);
  const loadFlags = (ordering & HarvestOrdering.RELAXED_FLAGS) !== 0 ? Access.ONCE : Access.ACQUIRE;
  const markReset = (ordering & HarvestOrdering.RELAXED_RESET) !== 0 ? Access.ONCE : Access.RELEASE;
  const i32 = ring.i32;
  const mask = ring.entryCount - 1;
  let fetch = cursor.fetchIndex >>> 0;
  let n = 0;
  while (n < max) {
    const idx = fetch & mask;
    const e = idx * DIRTY_GFN_WORDS;
    if (mem.load(i32, e + W_FLAGS, l.flags + idx, loadFlags) !== KVM_DIRTY_GFN_F_DIRTY) break;
    if (stepHook.active) stepHook.at(Step.HARVEST_ENTRY, fetch, 0);
    if (coverage.active) noteRingIndex(RingSide.HARVEST, fetch, ring.entryCount);
    const slot = mem.load(i32, e + W_SLOT, l.slot + idx, Access.ONCE) >>> 0;
    const offLo = mem.load64(i32, e + W_OFF_LO, l.offset + idx, Access.ONCE) >>> 0;
    sink(slot, offLo, mem.hi >>> 0);
    mem.store(i32, e + W_FLAGS, l.flags + idx, resetFlags, markReset);
    fetch = (fetch + 1) >>> 0;
    n++;
  }
  cursor.fetchIndex = fetch;
  return n;
}

/** A misbehaving userspace writing an entry: payload plainly, then flags with a release. */
export function modelledWriteRawEntry(ring: RingViews, index: number, flags: number, slot: number, offLo: number, offHi: number): void {
  const l = locsOf(ring.i32, ring.entryCount);
  const idx = (index >>> 0) & (ring.entryCount - 1);
  const e = idx * DIRTY_GFN_WORDS;
  mem.store(ring.i32, e + W_SLOT, l.slot + idx, slot | 0, Access.ONCE);
  mem.store64(ring.i32, e + W_OFF_LO, l.offset + idx, offLo | 0, offHi | 0, Access.ONCE);
  mem.store(ring.i32, e + W_FLAGS, l.flags + idx, flags | 0, Access.RELEASE);
}

/**
 * One access of a user's harvester (src/harvester/ring-mapping.ts) to entry `index` under the
 * model: flags with the ordering its accessor names, slot and offset plainly. The offset's high
 * word is left in `mem.hi`.
 */
export function modelledEntryLoad(ring: RingViews, index: number, word: number, access: number): number {
  const l = locsOf(ring.i32, ring.entryCount);
  const idx = (index >>> 0) & (ring.entryCount - 1);
  const e = idx * DIRTY_GFN_WORDS;
  if (word === W_FLAGS) return mem.load(ring.i32, e + W_FLAGS, l.flags + idx, access);
  if (word === W_SLOT) return mem.load(ring.i32, e + W_SLOT, l.slot + idx, access);
  return mem.load64(ring.i32, e + W_OFF_LO, l.offset + idx, access);
}

/** A user harvester's store to entry `index`'s flags under the model, with the ordering its accessor names. */
export function modelledFlagsStore(ring: RingViews, index: number, flags: number, access: number): void {
  const l = locsOf(ring.i32, ring.entryCount);
  const idx = (index >>> 0) & (ring.entryCount - 1);
  mem.store(ring.i32, idx * DIRTY_GFN_WORDS + W_FLAGS, l.flags + idx, flags | 0, access);
}

/** Locations a ring of `entries` entries takes (see the module comment). */
export function ringLocationCount(entries: number): number {
  return 3 * entries + 2;
}
