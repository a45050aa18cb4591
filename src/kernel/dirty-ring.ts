/**
 * The per-vCPU dirty ring (virt/kvm/dirty_ring.c), all three sides of it:
 *  - push, on the vCPU's thread (kvm_dirty_ring_push);
 *  - the reset walk, in the thread calling KVM_RESET_DIRTY_RINGS (kvm_dirty_ring_reset);
 *  - harvest, in userspace (what QEMU and dirty_log_test do with the mapping).
 *
 * Ordering (docs/PROTOCOL.md, section 3): the vCPU stores slot/offset with plain stores and then
 * publishes DIRTY with an Atomics store (release); the harvester acquire-loads flags before
 * reading the payload and release-stores RESET; the reset acquire-loads RESET before reading
 * the payload again and release-stores 0. JS Atomics are sequentially consistent, which is
 * stronger than each of these. Indices read by another thread (reset_index, which the vCPU
 * needs for `used`) are Atomics too. All index arithmetic is u32 (`>>> 0`).
 */
import {
  DIRTY_GFN_BYTES,
  INT_MAX,
  U32_BITS,
  KVM_DIRTY_GFN_F_DIRTY,
  KVM_DIRTY_GFN_F_RESET,
  KVM_DIRTY_RING_RSVD_ENTRIES,
} from '../abi/constants.js';
import { checkHarvestArgs } from './ioctl-args.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords, type RingViews, ringViews } from '../abi/dirty-gfn.js';
import { assert, debugChecks, isPowerOfTwo } from '../base/assert.js';
import { Edge, RingSide, coverage, hit, noteRingIndex } from './coverage.js';
import {
  type HarvestCursor,
  HarvestOrdering,
  type HarvestSink,
  type ModelledRing,
  modelledHarvest,
  modelledPush,
  modelledResetWalk,
  modelledSoftFull,
  modelledWriteRawEntry,
} from './dirty-ring-wmm.js';
import type { ResetBatch, ResetBatchSink } from './reset-batch.js';
import { fastResetWalk } from './ring-reset-walk.js';
import { Step, stepHook } from './step-hook.js';
import { type VcpuBlock, VcpuLayout } from './vcpu-layout.js';
import { mem } from './wmm/mem.js';

export { type HarvestCursor, HarvestOrdering, type HarvestSink } from './dirty-ring-wmm.js';
export { validateRingBytes } from './ring-size.js';

const W_FLAGS = DirtyGfnWords.FLAGS;
const W_SLOT = DirtyGfnWords.SLOT;
const W_OFF_LO = DirtyGfnWords.OFFSET_LO;
const W_OFF_HI = DirtyGfnWords.OFFSET_HI;
const V_DIRTY_INDEX = VcpuLayout.words.DIRTY_INDEX;
const V_RESET_INDEX = VcpuLayout.words.RESET_INDEX;

/**
 * Mutant late-soft-full: the soft-full request comes this many pushes after the ring is already
 * full, so that the vCPU overwrites entries (each push WARNs) before it exits — late enough to
 * lose pages, early enough that the run goes on and the oracle sees the loss.
 */
const LATE_SOFT_FULL_OVERRUN = 8;

/** Policy hooks that a caller (the VM) passes in; kept out of the hot path. */
export interface DirtyRingOptions {
  /** Reserved entries after the soft limit (64, or more with PML). */
  readonly reservedEntries?: number;
  /**
   * Called when a push finds the ring already full (the kernel's WARN_ON_ONCE). Required: such a
   * push overwrites an entry userspace has not harvested, and must never do so unannounced.
   */
  readonly onOverflow: () => void;
  /** Mutant `flags-before-payload`: publish DIRTY before storing slot/offset. */
  readonly flagsBeforePayload?: boolean;
  /** Mutant `late-soft-full`: request the exit only after more pushes than the reserve holds. */
  readonly lateSoftFull?: boolean;
  /** Mutant `push-no-wmb` (weak memory models only): no smp_wmb between payload and DIRTY. */
  readonly pushNoWmb?: boolean;
  /** The ring was enabled with KVM_CAP_DIRTY_LOG_RING_ACQ_REL (weak memory models only: the walk's orderings). */
  readonly acqRel?: boolean;
  /** Mutant `reset-relaxed-flags` (weak memory models only): the ACQ_REL walk loads flags plainly. */
  readonly relaxedResetFlags?: boolean;
}

/**
 * One vCPU's ring as seen from any thread. `push` must only be called from the thread running
 * the vCPU (it owns dirty_index); `resetWalk` only from the thread in KVM_RESET_DIRTY_RINGS
 * under slots_lock (it owns reset_index).
 */
export class DirtyRing implements ModelledRing {
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  /** Entries (a power of two). */
  readonly size: number;
  readonly mask: number;
  readonly softLimit: number;
  /** When the soft-full request is raised (softLimit, or later for the late-soft-full mutant). */
  readonly requestAt: number;
  /** The vCPU's shared block (dirty_index, reset_index). */
  readonly ctl: Int32Array;
  readonly flagsBeforePayload: boolean;
  readonly pushNoWmb: boolean;
  readonly acqRel: boolean;
  readonly relaxedResetFlags: boolean;
  readonly onOverflow: () => void;
  /** vCPU-thread mirror of dirty_index (that thread is its only writer). */
  dirtyIndex: number;

  /** The ring's memory: a SharedArrayBuffer of its own, or its words inside a larger one (ringViews). */
  constructor(
    ring: SharedArrayBuffer | Int32Array,
    readonly vcpu: VcpuBlock,
    options: DirtyRingOptions,
  ) {
    assert(typeof options.onOverflow === 'function', 'a dirty ring needs an overflow handler');
    const entries = ring.byteLength / DIRTY_GFN_BYTES;
    assert(isPowerOfTwo(entries), `a dirty ring of ${ring.byteLength} B is not a power-of-two number of ${DIRTY_GFN_BYTES}-byte entries`);
    const views: RingViews = ringViews(ring);
    this.i32 = views.i32;
    this.u32 = views.u32;
    this.size = views.entryCount;
    this.mask = this.size - 1;
    this.softLimit = this.size - (options.reservedEntries ?? KVM_DIRTY_RING_RSVD_ENTRIES);
    assert(this.softLimit > 0, `a ${this.size}-entry ring has no room before its reserve`);
    this.requestAt = options.lateSoftFull ? this.size + LATE_SOFT_FULL_OVERRUN : this.softLimit;
    this.ctl = vcpu.i32;
    this.flagsBeforePayload = options.flagsBeforePayload ?? false;
    this.pushNoWmb = options.pushNoWmb ?? false;
    this.acqRel = options.acqRel ?? true;
    this.relaxedResetFlags = options.relaxedResetFlags ?? false;
    this.onOverflow = options.onOverflow;
    this.dirtyIndex = Atomics.load(this.ctl, V_DIRTY_INDEX) >>> 0;
    // Debug builds push through a checking wrapper. Swapping the method once here, rather than
    // testing a flag in `push`, leaves the vCPU's push exactly as fast when checks are off.
    if (debugChecks) this.push = this.pushChecked;
  }

  // ----------------------------------------------------------------------------------------
  // vCPU side

  /**
   * kvm_dirty_ring_push: record (slot, offset) and return whether the ring is now soft-full
   * (the caller then raises KVM_REQ_DIRTY_RING_SOFT_FULL). A push is never refused; pushing
   * into a full ring is a kernel bug that WARNs and overwrites, as the kernel would.
   */
  push(slot: number, offLo: number, offHi: number): boolean {
    if (mem.active) return modelledPush(this, slot, offLo, offHi);
    // One read of reset_index serves both checks: a reset running meanwhile only lowers `used`.
    const resetIndex = Atomics.load(this.ctl, V_RESET_INDEX);
    if (((this.dirtyIndex - resetIndex) >>> 0) >= this.size) this.onOverflow();
    const e = (this.dirtyIndex & this.mask) * DIRTY_GFN_WORDS;
    const i32 = this.i32;
    if (this.flagsBeforePayload) {
      Atomics.store(i32, e + W_FLAGS, KVM_DIRTY_GFN_F_DIRTY);
      if (stepHook.active) stepHook.at(Step.PUSH_PUBLISH, this.dirtyIndex, offLo);
      i32[e + W_SLOT] = slot;
      i32[e + W_OFF_LO] = offLo;
      i32[e + W_OFF_HI] = offHi;
    } else {
      i32[e + W_SLOT] = slot;
      i32[e + W_OFF_LO] = offLo;
      i32[e + W_OFF_HI] = offHi;
      if (stepHook.active) stepHook.at(Step.PUSH_PUBLISH, this.dirtyIndex, offLo);
      // Release: the payload above is visible to whoever acquires DIRTY.
      Atomics.store(i32, e + W_FLAGS, KVM_DIRTY_GFN_F_DIRTY);
    }
    if (stepHook.active) {
      stepHook.at(Step.PUSH_ADVANCE, this.dirtyIndex, offLo);
      if (coverage.active) noteRingIndex(RingSide.PUSH, this.dirtyIndex, this.size);
    }
    this.dirtyIndex = (this.dirtyIndex + 1) >>> 0;
    Atomics.store(this.ctl, V_DIRTY_INDEX, this.dirtyIndex | 0);
    return ((this.dirtyIndex - resetIndex) >>> 0) >= this.requestAt;
  }

  /**
   * `push` with its invariants checked (debug builds): dirty_index has one writer, this vCPU's
   * thread, so nobody moved it behind our back; and after the push the ring holds at most
   * `size` entries, unless the push found it full and warned (a known kernel bug, or a
   * userspace that reset beyond the head). `used` read before the push can only be higher
   * than what the push sees (a reset only lowers it), so `warned` never misses a warning.
   */
  private pushChecked(slot: number, offLo: number, offHi: number): boolean {
    const shared = Atomics.load(this.ctl, V_DIRTY_INDEX) >>> 0;
    assert(shared === this.dirtyIndex, `dirty_index is ${shared}, but this vCPU last published ${this.dirtyIndex}`);
    const warned = this.used() >= this.size;
    const softFull = uncheckedPush.call(this, slot, offLo, offHi);
    const used = this.used();
    assert(warned || used <= this.size, `a push left ${used} entries in a ${this.size}-entry ring without a warning`);
    return softFull;
  }

  /** used = dirty_index − reset_index (u32), from any thread. */
  used(): number {
    return ((Atomics.load(this.ctl, V_DIRTY_INDEX) - Atomics.load(this.ctl, V_RESET_INDEX)) >>> 0);
  }

  isSoftFull(): boolean {
    return this.used() >= this.softLimit;
  }

  /**
   * The soft-full check of the vCPU's own guest entry (kvm_dirty_ring_check_request): READ_ONCE
   * of both indices, which under a weak memory model may see an older reset_index. Everyone
   * else (userspace's checks, the harness) asks `isSoftFull`, which reads shared memory as is.
   */
  isSoftFullForVcpu(): boolean {
    if (mem.active) return modelledSoftFull(this, this.softLimit);
    return this.used() >= this.softLimit;
  }

  isFull(): boolean {
    return this.used() >= this.size;
  }

  get dirtyIndexShared(): number {
    return Atomics.load(this.ctl, V_DIRTY_INDEX) >>> 0;
  }

  get resetIndexShared(): number {
    return Atomics.load(this.ctl, V_RESET_INDEX) >>> 0;
  }

  // ----------------------------------------------------------------------------------------
  // Kernel side: KVM_RESET_DIRTY_RINGS for this ring

  /**
   * Walk from reset_index while entries carry RESET, zero them, advance reset_index, and
   * re-arm logging for the pages they name, coalescing consecutive offsets of one slot into
   * 64-bit masks forward and backward. Stops when `alreadyCleared + count` reaches INT_MAX or
   * `signalPending()` says so (the partial count is returned; the rest stays for next time).
   * Returns the number of entries consumed, bad ones included.
   */
  resetWalk(batch: ResetBatch, sink: ResetBatchSink, alreadyCleared: number, signalPending?: () => boolean): number {
    if (mem.active) return modelledResetWalk(this, batch, sink, alreadyCleared, signalPending);
    if (!signalPending && !stepHook.active && !coverage.active && !debugChecks) return fastResetWalk(this, batch, sink, alreadyCleared);
    const i32 = this.i32;
    const start = Atomics.load(this.ctl, V_RESET_INDEX) >>> 0;
    let resetIndex = start;
    let previous = start;
    let count = 0;
    batch.open = false;
    try {
      while (alreadyCleared + count < INT_MAX) {
        if (signalPending && signalPending()) break;
        const e = (resetIndex & this.mask) * DIRTY_GFN_WORDS;
        // Acquire: only entries userspace has released with RESET are ours to consume.
        const flags = Atomics.load(i32, e + W_FLAGS);
        if ((flags & KVM_DIRTY_GFN_F_RESET) === 0) break;
        if (stepHook.active) {
          stepHook.at(Step.RESET_ENTRY, resetIndex, 0);
          if (coverage.active) noteRingIndex(RingSide.RESET, resetIndex, this.size);
        }
        // Read the payload again from the shared entry: userspace may have rewritten it.
        const slot = i32[e + W_SLOT]! >>> 0;
        const offLo = i32[e + W_OFF_LO]! >>> 0;
        const offHi = i32[e + W_OFF_HI]! >>> 0;
        // A plain store, as the kernel's WRITE_ONCE: the vCPU pushes into this entry again only
        // after it reads the reset_index published below (an Atomics exchange, after this
        // store in program order), and userspace reads flags only at entries pushed since. An
        // Atomics.store here is a full barrier (xchg) per entry and cost ≈ 8 ns.
        i32[e + W_FLAGS] = 0;
        resetIndex = (resetIndex + 1) >>> 0;
        count++;
        batch.add(slot, offLo, offHi, sink);
      }
    } finally {
      // Published once per walk: the vCPU only needs reset_index to see room in its ring, and
      // seeing it later is merely conservative. The zeroed flags above are released by this
      // store. In `finally` because an entry whose flags are zeroed must be behind reset_index
      // even if the walk throws (a sink's lock timeout, an aborted step): otherwise the next
      // walk stops at that entry (flags 0, not RESET) and the ring never drains again.
      previous = Atomics.exchange(this.ctl, V_RESET_INDEX, resetIndex | 0) >>> 0;
    }
    if (debugChecks) checkResetAdvance(start, previous, resetIndex, count);
    // Stopped at an entry userspace has not released yet, with pushed entries behind it.
    if (coverage.active && count > 0 && resetIndex !== this.dirtyIndexShared) hit(Edge.RING_RESET_MID_RING);
    batch.finish(sink);
    return count;
  }

  /** Raw entry access for tests and for a misbehaving userspace (bad entries, beyond head). */
  entryFlags(index: number): number {
    return Atomics.load(this.i32, (index & this.mask) * DIRTY_GFN_WORDS + W_FLAGS);
  }
}

/**
 * The push without checks, for `pushChecked`. A module binding on purpose: naming the class
 * inside its own body gives the class a scope of its own, one more hop from every method to the
 * module's constants, and that measurably slowed `push`.
 */
const uncheckedPush = DirtyRing.prototype.push;

/**
 * Debug, after a reset walk: reset_index has one writer, the walk under slots_lock, so it still
 * held the walk's start when the walk published; and it advanced by exactly the entries consumed.
 * Exported for its unit test.
 */
export function checkResetAdvance(start: number, previous: number, resetIndex: number, count: number): void {
  assert(previous === start, `reset_index moved from ${start} to ${previous} during a reset walk`);
  assert(((resetIndex - start) >>> 0) === count, `a reset walk consumed ${count} entries but advanced reset_index by ${(resetIndex - start) >>> 0}`);
}

// ------------------------------------------------------------------------------------------
// Userspace side: harvest

/**
 * Collect entries strictly in order starting at `cursor.fetchIndex`: acquire-load flags, stop
 * at the first entry that is not exactly DIRTY, read slot/offset, pass them to `sink`,
 * release-store `resetFlags` (RESET = 2 as QEMU and the selftest do; any value with bit 1 set
 * is accepted by the kernel), advance. At most `max` entries. Never skips one: the reset
 * stops at the first entry without RESET, so a skipped entry would strand every later one.
 * `ordering` (HarvestOrdering) says which of the two accesses to flags are plain instead, as
 * in pre-2022 harvesters: it matters only under a weak memory model. Returns the number harvested.
 */
export function harvestRing(
  ring: RingViews,
  cursor: HarvestCursor,
  max: number,
  sink: HarvestSink,
  resetFlags: number = KVM_DIRTY_GFN_F_RESET,
  ordering: number = HarvestOrdering.ACQ_REL,
): number {
  checkHarvestArgs(cursor, max, sink, resetFlags);
  if (mem.active) return modelledHarvest(ring, cursor, max, sink, resetFlags, ordering);
  const i32 = ring.i32;
  const mask = ring.entryCount - 1;
  let fetch = cursor.fetchIndex >>> 0;
  let n = 0;
  // Entries after this one already known published (see acquireAhead); their flags are read plainly.
  let known = 0;
  let probe = !stepHook.active && ordering === HarvestOrdering.ACQ_REL;
  while (n < max) {
    const e = (fetch & mask) * DIRTY_GFN_WORDS;
    // Exactly DIRTY, as QEMU and the selftest test it: an entry with any other bit set (a
    // misbehaving userspace's write) is not collected, as observed on 6.18 (docs/PROTOCOL.md,
    // section 8, scenario harvest-flags-exact).
    let flags: number;
    if (known > 0) {
      known--;
      flags = i32[e + W_FLAGS]!;
    } else {
      flags = Atomics.load(i32, e + W_FLAGS);
      if (probe && flags === KVM_DIRTY_GFN_F_DIRTY) {
        known = acquireAhead(i32, fetch, mask, max - n - 1);
        probe = known > 0;
      }
    }
    if (flags !== KVM_DIRTY_GFN_F_DIRTY) break;
    if (stepHook.active) {
      stepHook.at(Step.HARVEST_ENTRY, fetch, 0);
      if (coverage.active) noteRingIndex(RingSide.HARVEST, fetch, ring.entryCount);
    }
    sink(i32[e + W_SLOT]! >>> 0, i32[e + W_OFF_LO]! >>> 0, i32[e + W_OFF_HI]! >>> 0);
    Atomics.store(i32, e + W_FLAGS, resetFlags);
    fetch = (fetch + 1) >>> 0;
    n++;
  }
  cursor.fetchIndex = fetch;
  return n;
}

/** How far ahead `acquireAhead` looks (entries): a few per cache line of the harvest's work. */
const ACQUIRE_AHEAD = 64;

/**
 * One acquire for a run of entries: acquire-load the flags of the entry `ACQUIRE_AHEAD` after
 * `fetch` (fewer near `limit` or the ring's end); when it is DIRTY, return how many entries after
 * `fetch` are known published, else 0. Why that holds: a DIRTY at or after the fetch index was
 * published by the push of that very index (every older lap's entry there was harvested —
 * RESET by this thread or by one ordered before it by the reaper lock — so it cannot read
 * DIRTY again until pushed again); one vCPU pushes in index order, so the acquire that sees
 * push k's release makes every earlier push's flags and payload visible, and nobody writes
 * those entries again before this harvest marks them RESET. The flags are still tested one by
 * one (exactly DIRTY), so what is collected is what per-entry acquires would collect. Saves an
 * Atomics operation per entry (≈ 6 ns here); free-running only: stepped and modelled harvests
 * keep one acquire per entry.
 */
function acquireAhead(i32: Int32Array, fetch: number, mask: number, limit: number): number {
  const k = Math.min(ACQUIRE_AHEAD, mask, limit);
  if (k <= 0) return 0;
  const e = ((fetch + k) & mask) * DIRTY_GFN_WORDS;
  return Atomics.load(i32, e + W_FLAGS) === KVM_DIRTY_GFN_F_DIRTY ? k : 0;
}

/**
 * A misbehaving userspace writing an entry directly (garbage slot/offset, RESET on entries
 * never pushed). Used by fidelity scenarios and mutants; the kernel must survive it.
 */
export function writeRawEntry(ring: RingViews, index: number, flags: number, slot: number, offset: bigint): void {
  const e = ((index >>> 0) & (ring.entryCount - 1)) * DIRTY_GFN_WORDS;
  const off = BigInt.asUintN(2 * U32_BITS, offset);
  if (mem.active) {
    modelledWriteRawEntry(ring, index, flags, slot, Number(BigInt.asUintN(U32_BITS, off)), Number(off >> BigInt(U32_BITS)));
    return;
  }
  ring.u32[e + W_SLOT] = slot >>> 0;
  ring.u32[e + W_OFF_LO] = Number(BigInt.asUintN(U32_BITS, off));
  ring.u32[e + W_OFF_HI] = Number(off >> BigInt(U32_BITS));
  Atomics.store(ring.i32, e + W_FLAGS, flags | 0);
}
