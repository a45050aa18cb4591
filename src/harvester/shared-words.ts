/**
 * Words a harvester's threads share (`kvm.shared`), with accessors that name their ordering,
 * as the ring accessors do: relaxed and plain are unordered with the thread's other accesses,
 * a release store orders every earlier access of its thread before it, an acquire load every
 * later one after it. On real threads they are Atomics (JS offers nothing weaker that is
 * untorn); the orderings are what a weak memory model (controlled runs) holds them to. Each
 * access is a step point, so a thread that hangs is named with its last one.
 */
import { Step, stepHook } from '../kernel/step-hook.js';
import { mem } from '../kernel/wmm/mem.js';
import { Access } from '../kernel/wmm/ordering.js';
import type { SharedWords } from './contract.js';
import { HarvesterAccess } from './ring-mapping.js';

/** Words shared by a harvester's threads. */
export const HARVESTER_SHARED_WORDS = 16;
/**
 * A C harvester's threads share its static variables instead: in controlled runs each static
 * word they touch becomes one of this many modelled locations (wasm-statics.ts), after the
 * kvm.shared words, numbered in the order the run first touches them.
 */
export const HARVESTER_STATIC_LOCATIONS = 512;

/**
 * The shared-words buffer of a run: kvm.shared, and for a C harvester the static words' table
 * (a key per location: which word it models).
 */
export function allocateHarvesterWords(withStatics: boolean): SharedArrayBuffer {
  return new SharedArrayBuffer((HARVESTER_SHARED_WORDS + (withStatics ? 2 * HARVESTER_STATIC_LOCATIONS : 0)) * 4);
}

/** The modelled locations of a shared-words buffer: kvm.shared, then the static words' if it has their table. */
export function harvesterWordLocations(buffer: SharedArrayBuffer): number {
  return buffer.byteLength > HARVESTER_SHARED_WORDS * 4 ? HARVESTER_SHARED_WORDS + HARVESTER_STATIC_LOCATIONS : HARVESTER_SHARED_WORDS;
}

export class HarvesterSharedWords implements SharedWords {
  readonly length = HARVESTER_SHARED_WORDS;
  private readonly i32: Int32Array;
  /** The buffer shared by the threads (null: this thread's own words). */
  readonly buffer: SharedArrayBuffer | null;
  /** Only words shared among threads are the model's locations (run-memory.ts registers them). */
  private readonly modelled: boolean;

  /** `buffer`: the words of every thread of the harvester; none: this thread's own. */
  constructor(buffer?: SharedArrayBuffer) {
    this.modelled = buffer !== undefined;
    this.buffer = buffer ?? null;
    this.i32 = new Int32Array(buffer ?? new SharedArrayBuffer(HARVESTER_SHARED_WORDS * 4), 0, HARVESTER_SHARED_WORDS);
  }

  // Relaxed and plain are alike to the model (READ_ONCE / WRITE_ONCE: untorn, unordered).
  loadRelaxed(i: number): number {
    return this.load(i, Access.ONCE);
  }

  loadAcquire(i: number): number {
    return this.load(i, Access.ACQUIRE);
  }

  loadPlain(i: number): number {
    return this.load(i, Access.ONCE);
  }

  storeRelaxed(i: number, value: number): void {
    this.store(i, value, Access.ONCE);
  }

  storeRelease(i: number, value: number): void {
    this.store(i, value, Access.RELEASE);
  }

  storePlain(i: number, value: number): void {
    this.store(i, value, Access.ONCE);
  }

  private load(i: number, access: number): number {
    this.check(i);
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, i, HarvesterAccess.SHARED_LOAD);
    if (mem.active && this.modelled) return mem.load(this.i32, i, mem.base(this.i32.buffer) + i, access);
    return Atomics.load(this.i32, i);
  }

  private store(i: number, value: number, access: number): void {
    this.check(i);
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, i, HarvesterAccess.SHARED_STORE);
    if (mem.active && this.modelled) {
      mem.store(this.i32, i, mem.base(this.i32.buffer) + i, value | 0, access);
      return;
    }
    Atomics.store(this.i32, i, value | 0);
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= HARVESTER_SHARED_WORDS) throw new RangeError(`kvm.shared: no word ${i} (there are ${HARVESTER_SHARED_WORDS})`);
  }
}
