/**
 * A user harvester's ring accessors: each names its ordering (acquire load of flags, plain
 * reads of slot and offset, release store of RESET) and is implemented with exactly that
 * ordering — Atomics for flags, plain typed-array reads for the payload — or, under a weak
 * memory model in controlled runs, through the model's facade with that ordering. Each access
 * is a step point (Step.HARVESTER_ACCESS), so the controlled scheduler can put any vCPU move
 * between two of the user's accesses, as real hardware can.
 */
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET } from '../abi/constants.js';
import { RingSide, coverage, noteRingIndex } from '../kernel/coverage.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords, type RingViews } from '../abi/dirty-gfn.js';
import { modelledEntryLoad, modelledFlagsStore } from '../kernel/dirty-ring-wmm.js';
import { Step, stepHook } from '../kernel/step-hook.js';
import { mem } from '../kernel/wmm/mem.js';
import { Access } from '../kernel/wmm/ordering.js';
import type { DirtyRingMapping } from './contract.js';

/** Step.HARVESTER_ACCESS's b: which access. */
export const HarvesterAccess = { LOAD_FLAGS: 1, READ_SLOT: 2, READ_OFFSET: 3, STORE_RESET: 4, STORE_FLAGS: 5, LOAD_FLAGS_PLAIN: 6, SHARED_LOAD: 7, SHARED_STORE: 8 } as const;

const W_FLAGS = DirtyGfnWords.FLAGS;
const W_SLOT = DirtyGfnWords.SLOT;
const W_OFF_LO = DirtyGfnWords.OFFSET_LO;
const W_OFF_HI = DirtyGfnWords.OFFSET_HI;
const TWO_POW_32 = 2 ** 32;

/** RESET marks made through the accessors since the last reset (the reset-count check). */
export interface ResetMarks {
  marked: number;
}

export class RingMapping implements DirtyRingMapping {
  readonly entryCount: number;
  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly mask: number;

  constructor(
    readonly vcpu: number,
    private readonly views: RingViews,
    readonly startIndex: number,
    private readonly marks: ResetMarks,
  ) {
    this.entryCount = views.entryCount;
    this.buffer = views.i32.buffer as SharedArrayBuffer;
    this.byteOffset = views.i32.byteOffset;
    this.i32 = views.i32;
    this.u32 = views.u32;
    this.mask = views.entryCount - 1;
  }

  loadFlagsAcquire(index: number): number {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.LOAD_FLAGS);
    const flags = mem.active ? modelledEntryLoad(this.views, index, W_FLAGS, Access.ACQUIRE) >>> 0 : Atomics.load(this.i32, (index & this.mask) * DIRTY_GFN_WORDS + W_FLAGS) >>> 0;
    if (coverage.active) this.noteHarvest(index, flags);
    return flags;
  }

  loadFlagsPlain(index: number): number {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.LOAD_FLAGS_PLAIN);
    // Untorn, as READ_ONCE: JS offers nothing weaker for a shared word; the model is where it matters.
    const flags = mem.active ? modelledEntryLoad(this.views, index, W_FLAGS, Access.ONCE) >>> 0 : Atomics.load(this.i32, (index & this.mask) * DIRTY_GFN_WORDS + W_FLAGS) >>> 0;
    if (coverage.active) this.noteHarvest(index, flags);
    return flags;
  }

  /** A flags load that finds the entry DIRTY is the harvest of it: the ring.harvest.* edges, as the built-in loop records them. */
  private noteHarvest(index: number, flags: number): void {
    if ((flags & KVM_DIRTY_GFN_F_DIRTY) !== 0) noteRingIndex(RingSide.HARVEST, index >>> 0, this.entryCount);
  }

  readSlot(index: number): number {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.READ_SLOT);
    if (mem.active) return modelledEntryLoad(this.views, index, W_SLOT, Access.ONCE) >>> 0;
    return this.u32[(index & this.mask) * DIRTY_GFN_WORDS + W_SLOT]!;
  }

  readOffset(index: number): number {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.READ_OFFSET);
    if (mem.active) {
      const lo = modelledEntryLoad(this.views, index, W_OFF_LO, Access.ONCE) >>> 0;
      return (mem.hi >>> 0) * TWO_POW_32 + lo;
    }
    const e = (index & this.mask) * DIRTY_GFN_WORDS;
    return this.u32[e + W_OFF_HI]! * TWO_POW_32 + this.u32[e + W_OFF_LO]!;
  }

  storeResetRelease(index: number): void {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.STORE_RESET);
    this.marks.marked++;
    if (mem.active) {
      modelledFlagsStore(this.views, index, KVM_DIRTY_GFN_F_RESET, Access.RELEASE);
      return;
    }
    Atomics.store(this.i32, (index & this.mask) * DIRTY_GFN_WORDS + W_FLAGS, KVM_DIRTY_GFN_F_RESET);
  }

  /**
   * flags = RESET, a plain store (WRITE_ONCE): a WebAssembly harvester's mark made without the
   * release. Counted as a RESET mark like storeResetRelease; the model sees the weaker ordering.
   */
  storeResetPlain(index: number): void {
    this.marks.marked++;
    this.storeFlagsPlain(index, KVM_DIRTY_GFN_F_RESET);
  }

  /**
   * RESET marks the harness could not see being made (a WebAssembly harvester's native stores in
   * a free run), counted in the ring just before the reset that consumes them.
   */
  addMarks(count: number): void {
    this.marks.marked += count;
  }

  storeFlagsPlain(index: number, value: number): void {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, index >>> 0, HarvesterAccess.STORE_FLAGS);
    if (mem.active) {
      modelledFlagsStore(this.views, index, value, Access.ONCE);
      return;
    }
    // JS has no plain store weaker than this that is still untorn; the model above is where the
    // weaker ordering matters.
    Atomics.store(this.i32, (index & this.mask) * DIRTY_GFN_WORDS + W_FLAGS, value | 0);
  }
}
