/**
 * The one facade through which kernel and userspace code makes a modelled access: every load,
 * store, fence and atomic of a shared protocol location states the ordering the real code uses
 * (ordering.ts), and under a weak memory model goes through the model (model.ts) as well as
 * real memory. Real memory always holds the newest store (what the oracle and the scheduler's
 * checks read); a modelled load returns whichever store the model lets it read, as the
 * scheduler decided.
 *
 * Like the step hook, it is inactive outside controlled runs under a weak profile: callers test
 * `mem.active` once (one property load, a branch that never changes) and take their plain
 * Atomics path when it is false. Each thread has its own module instance: a participant installs
 * the model in its own thread with its own thread id.
 *
 * Locations are numbered by the caller's layout (locations.ts): a memory area (a ring's buffer,
 * a memslot's SPTE array, a bitmap) is registered with the number of its first location, and a
 * call names the word in the area and its location number.
 */
import { assert, debugChecks } from '../../base/assert.js';
import type { WeakModel } from './model.js';

/** Chooses the store a load reads among `n` candidates (0 = newest); may park the thread. */
export type ReadFromDecider = (loc: number, n: number) => number;

export interface MemInstall {
  readonly model: WeakModel;
  /** This thread's id in the model (the participant number). */
  readonly thread: number;
  readonly decide: ReadFromDecider;
  /** Memory areas (a buffer, then the area's byte offset in it) → the number of their first location. */
  readonly bases: ReadonlyMap<ArrayBufferLike, ReadonlyMap<number, number>>;
  /** Control words and locks → sync object ids, per buffer and word index. */
  readonly syncObjects: ReadonlyMap<ArrayBufferLike, ReadonlyMap<number, number>>;
}

const NO_SYNC: ReadonlyMap<number, number> = new Map();

export class Mem {
  active = false;
  thread = -1;
  /** The high word of the last 64-bit load or read-modify-write. */
  hi = 0;
  private model: WeakModel | null = null;
  private decide: ReadFromDecider = () => 0;
  private bases: ReadonlyMap<ArrayBufferLike, ReadonlyMap<number, number>> = new Map();
  private syncs: ReadonlyMap<ArrayBufferLike, ReadonlyMap<number, number>> = new Map();

  install(i: MemInstall): void {
    this.model = i.model;
    this.thread = i.thread;
    this.decide = i.decide;
    this.bases = i.bases;
    this.syncs = i.syncObjects;
    this.active = true;
  }

  uninstall(): void {
    this.active = false;
    this.model = null;
    this.thread = -1;
    this.bases = new Map();
    this.syncs = new Map();
  }

  get weak(): WeakModel {
    const m = this.model;
    assert(m !== null, 'modelled access without a memory model installed');
    return m;
  }

  /**
   * The number of the first location of the memory area at `byteOffset` in `buffer` (areas share
   * a buffer when the rings are placed in a WebAssembly harvester's linear memory).
   */
  base(buffer: ArrayBufferLike, byteOffset = 0): number {
    const b = this.bases.get(buffer)?.get(byteOffset);
    assert(b !== undefined, 'modelled access to a memory area the location layout does not know');
    return b;
  }

  // ----------------------------------------------------------------------------------------
  // 32-bit locations: one word of `i32`

  load(i32: Int32Array, word: number, loc: number, access: number): number {
    const m = this.touch(i32, word, loc, false);
    const t = this.thread;
    const n = m.candidates(t, loc);
    return m.read(t, loc, access, n > 1 ? this.decide(loc, n) : 0);
  }

  store(i32: Int32Array, word: number, loc: number, value: number, access: number): void {
    const m = this.touch(i32, word, loc, false);
    Atomics.store(i32, word, value);
    m.store(this.thread, loc, value | 0, 0, access);
  }

  /** An atomic OR (set_bit and friends); returns the old value. */
  or(i32: Int32Array, word: number, loc: number, bits: number, kind: number): number {
    const m = this.touch(i32, word, loc, false);
    const old = m.rmwRead(this.thread, loc, kind);
    Atomics.or(i32, word, bits);
    m.rmwWrite(this.thread, loc, old | bits, 0, kind);
    return old;
  }

  /** An atomic AND (clear_bit, fetch_andnot with the complement); returns the old value. */
  and(i32: Int32Array, word: number, loc: number, bits: number, kind: number): number {
    const m = this.touch(i32, word, loc, false);
    const old = m.rmwRead(this.thread, loc, kind);
    Atomics.and(i32, word, bits);
    m.rmwWrite(this.thread, loc, old & bits, 0, kind);
    return old;
  }

  xchg(i32: Int32Array, word: number, loc: number, value: number, kind: number): number {
    const m = this.touch(i32, word, loc, false);
    const old = m.rmwRead(this.thread, loc, kind);
    Atomics.store(i32, word, value);
    m.rmwWrite(this.thread, loc, value | 0, 0, kind);
    return old;
  }

  /** cmpxchg: stores `desired` only if the newest value is `expected`; returns the old value. */
  cmpxchg(i32: Int32Array, word: number, loc: number, expected: number, desired: number, kind: number): number {
    const m = this.touch(i32, word, loc, false);
    const old = m.rmwRead(this.thread, loc, kind);
    if (old !== (expected | 0)) {
      m.rmwFail(this.thread, loc, kind);
      return old;
    }
    Atomics.store(i32, word, desired);
    m.rmwWrite(this.thread, loc, desired | 0, 0, kind);
    return old;
  }

  // ----------------------------------------------------------------------------------------
  // 64-bit locations: words `word` (low) and `word + 1` (high), one location (an aligned u64
  // is single-copy atomic on both architectures: never torn)

  load64(i32: Int32Array, word: number, loc: number, access: number): number {
    const m = this.touch(i32, word, loc, true);
    const t = this.thread;
    const n = m.candidates(t, loc);
    const lo = m.read(t, loc, access, n > 1 ? this.decide(loc, n) : 0);
    this.hi = m.hi;
    return lo;
  }

  store64(i32: Int32Array, word: number, loc: number, lo: number, hi: number, access: number): void {
    const m = this.touch(i32, word, loc, true);
    i32[word] = lo;
    i32[word + 1] = hi;
    m.store(this.thread, loc, lo | 0, hi | 0, access);
  }

  // ----------------------------------------------------------------------------------------
  // Fences and synchronization

  fence(barrier: number): void {
    this.weak.fence(this.thread, barrier);
  }

  /** This thread acquired the lock or control word at `i32[word]` (if it is a sync object). */
  acquired(i32: Int32Array, word: number): void {
    const obj = this.syncObject(i32, word);
    if (obj >= 0) this.weak.syncAcquire(this.thread, obj);
  }

  /** This thread released the lock or control word at `i32[word]` (if it is a sync object). */
  released(i32: Int32Array, word: number): void {
    const obj = this.syncObject(i32, word);
    if (obj >= 0) this.weak.syncRelease(this.thread, obj);
  }

  private syncObject(i32: Int32Array, word: number): number {
    return (this.syncs.get(i32.buffer) ?? NO_SYNC).get(word + i32.byteOffset / Int32Array.BYTES_PER_ELEMENT) ?? -1;
  }

  /** The model, with `loc` initialized from real memory at its first use. */
  private touch(i32: Int32Array, word: number, loc: number, wide: boolean): WeakModel {
    const m = this.weak;
    if (!m.touched(loc)) {
      m.init(loc, i32[word]!, wide ? i32[word + 1]! : 0);
    } else if (debugChecks) {
      // Real memory holds the newest store; anything else is a write that bypassed the facade.
      const lo = m.newest(loc);
      assert(lo === i32[word] && (!wide || m.hi === i32[word + 1]), `location ${loc} was written without the memory model (memory ${i32[word]}, model ${lo})`);
    }
    return m;
  }
}

/** This thread's facade. */
export const mem = new Mem();
