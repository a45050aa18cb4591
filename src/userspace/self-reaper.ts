/**
 * The QEMU-style reaction to KVM_EXIT_DIRTY_RING_FULL: the vCPU thread that exited harvests its
 * own ring and calls KVM_RESET_DIRTY_RINGS itself (QEMU's kvm_dirty_ring_reap on the vCPU
 * thread), instead of stalling until userspace's main thread notices, harvests and wakes it.
 * Nothing crosses threads on that path, so the vCPU is back in KVM_RUN within microseconds.
 *
 * Any thread may reap: a vCPU thread its own ring on exit 31, userspace every ring periodically
 * and at the final sync. Reaping is serialized by a lock in shared memory (QEMU's slots lock
 * around the reap) because
 *  - each ring's fetch index is shared by every thread that may harvest it (a ring has one
 *    reader at a time, in order), and
 *  - a reset consumes every entry marked RESET, so the harvest and the reset that follows must
 *    not interleave with another reaper's, or the reset count would not match the harvest.
 * Harvested pages go into userspace's own dirty bitmap per memslot (QEMU's slot dirty_bmap),
 * also in shared memory. `drain` takes and clears those bits under the same lock, into a
 * private copy, and hands the pages over after unlocking: a bit is only ever set by a reap
 * that resets before it unlocks, so every page drained is one whose reset has returned (it is
 * write-protected again and no vCPU holds a stale writable TLB entry) and may be read. The
 * sink (oracle report, page copy) runs outside the lock, so a vCPU reaping on exit 31 never
 * waits for it.
 *
 * The userspace collector's known bugs (userspace/faults.ts) live here too, so that a run with
 * either design takes them: harvest-skips-entry in every thread that reaps (ReaperBuffers),
 * copy-before-reset in userspace's own reap (reapCopyingBeforeReset).
 *
 * The control buffer is ReaperLayout (reaper-layout.ts) followed by one fetch index per vCPU.
 */
import { REAPER_FETCH_WORD, ReaperLayout } from './reaper-layout.js';
import { type RingViews } from '../abi/dirty-gfn.js';
import { type HarvestCursor, harvestRing } from '../kernel/dirty-ring.js';
import { SharedMutex } from '../kernel/sync.js';
import { MAX_VCPUS, type Vm } from '../kernel/vm.js';

const LOCK = ReaperLayout.words.LOCK;
const FETCH = REAPER_FETCH_WORD;
const INT_WORDS = FETCH + MAX_VCPUS;
const F_HARVESTED = ReaperLayout.floats.HARVESTED;
const F_RESETS = ReaperLayout.floats.RESETS;
const F_ENTRIES_RESET = ReaperLayout.floats.ENTRIES_RESET;
const F_MISMATCHES = ReaperLayout.floats.MISMATCHES;
const F_BAD_ENTRIES = ReaperLayout.floats.BAD_ENTRIES;
const F_REAPS = ReaperLayout.floats.REAPS;

/** One memslot as the reaper records it. */
export interface ReaperSlot {
  readonly encodedSlot: number;
  readonly pageCount: number;
  /** Userspace's dirty bitmap for the slot: bit n = page n, Int32 words. */
  readonly bitmap: SharedArrayBuffer;
}

/** Everything a thread needs to join the reaper: plain data, posted once. */
export interface ReaperBuffers {
  readonly control: SharedArrayBuffer;
  readonly slots: readonly ReaperSlot[];
  /**
   * Mutant `harvest-skips-entry` (userspace/faults.ts), in every thread that reaps: each reaper
   * drops every Nth entry it harvests without recording it (still marked RESET). 0: none.
   */
  readonly skipEveryNth: number;
}

export interface ReaperStats {
  readonly harvested: number;
  readonly resets: number;
  readonly entriesReset: number;
  /** Resets whose count differed from the harvest before them. */
  readonly mismatches: number;
  /** Entries naming no known slot or a page past its end (counted, not recorded). */
  readonly badEntries: number;
  readonly reaps: number;
}

/** Receives each drained page: slot as encoded, page offset in the slot. */
export type DrainSink = (encodedSlot: number, offset: number) => void;

export class SharedReaper {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly lock: SharedMutex;
  private readonly rings: (RingViews | null)[] = [];
  private readonly cursor: HarvestCursor = { fetchIndex: 0 };
  private readonly slotEnc: Int32Array;
  private readonly slotPages: Float64Array;
  private readonly bitmaps: Int32Array[];
  /** drain's private copy of the bitmaps (one per slot, allocated once). */
  private readonly taken: Int32Array[];
  private lastSlot = -1;
  private harvestedNow = 0;
  private badNow = 0;
  private drainedNow = 0;
  /** Entries this thread's reaper has seen, for the skip mutant's count. */
  private seen = 0;
  private readonly skipEveryNth: number;
  private readonly sink = (slot: number, offLo: number, offHi: number): void => this.record(slot, offLo, offHi);

  /** Allocate the shared buffers for `slots` (encoded slot and page count each). */
  static createBuffers(slots: readonly { readonly encodedSlot: number; readonly pageCount: number }[], skipEveryNth = 0): ReaperBuffers {
    return {
      skipEveryNth,
      control: new SharedArrayBuffer(INT_WORDS * Int32Array.BYTES_PER_ELEMENT),
      slots: slots.map((s) => ({
        encodedSlot: s.encodedSlot,
        pageCount: s.pageCount,
        bitmap: new SharedArrayBuffer(Math.ceil(s.pageCount / 32) * Int32Array.BYTES_PER_ELEMENT),
      })),
    };
  }

  constructor(
    readonly vm: Vm,
    readonly buffers: ReaperBuffers,
  ) {
    this.i32 = new Int32Array(buffers.control, 0, INT_WORDS);
    this.f64 = new Float64Array(buffers.control, ReaperLayout.floatByteOffset, ReaperLayout.floatCount);
    this.lock = new SharedMutex(this.i32, LOCK, 'reaper lock');
    this.slotEnc = Int32Array.from(buffers.slots, (s) => s.encodedSlot | 0);
    this.slotPages = Float64Array.from(buffers.slots, (s) => s.pageCount);
    this.bitmaps = buffers.slots.map((s) => new Int32Array(s.bitmap));
    this.taken = this.bitmaps.map((bm) => new Int32Array(bm.length));
    this.skipEveryNth = buffers.skipEveryNth;
  }

  private ringOf(vcpu: number): RingViews {
    let r = this.rings[vcpu];
    if (!r) {
      r = this.vm.mmapRing(vcpu);
      this.rings[vcpu] = r;
    }
    return r;
  }

  /**
   * Harvest vCPU `vcpu`'s ring (or every ring when `vcpu` < 0) into the bitmaps, then
   * KVM_RESET_DIRTY_RINGS when anything was harvested; under the reaper lock. Returns the
   * number of entries harvested.
   */
  reap(vcpu: number): number {
    return this.reapLocked(vcpu, null);
  }

  /**
   * Mutant `copy-before-reset`: reap every ring, but hand the bitmaps' pages to `sink` between
   * the harvest and the reset (still under the lock), i.e. read pages that are still writable.
   * Returns the number of pages handed over.
   */
  reapCopyingBeforeReset(sink: DrainSink): number {
    this.drainedNow = 0;
    this.reapLocked(-1, sink);
    return this.drainedNow;
  }

  private reapLocked(vcpu: number, copyBeforeReset: DrainSink | null): number {
    this.lock.lock();
    try {
      this.harvestedNow = 0;
      this.badNow = 0;
      if (vcpu >= 0) this.harvestOne(vcpu);
      else for (let i = 0; i < this.vm.vcpuCount; i++) this.harvestOne(i);
      const n = this.harvestedNow;
      const f = this.f64;
      f[F_REAPS]! += 1;
      f[F_HARVESTED]! += n;
      f[F_BAD_ENTRIES]! += this.badNow;
      if (copyBeforeReset !== null) {
        this.take();
        this.drainedNow = this.emitTaken(copyBeforeReset);
      }
      if (n > 0) {
        const reset = this.vm.resetDirtyRings();
        f[F_RESETS]! += 1;
        f[F_ENTRIES_RESET]! += reset;
        if (reset !== n) f[F_MISMATCHES]! += 1;
      }
      return n;
    } finally {
      this.lock.unlock();
    }
  }

  private harvestOne(vcpu: number): void {
    const c = this.cursor;
    c.fetchIndex = Atomics.load(this.i32, FETCH + vcpu) >>> 0;
    harvestRing(this.ringOf(vcpu), c, Number.MAX_SAFE_INTEGER, this.sink);
    Atomics.store(this.i32, FETCH + vcpu, c.fetchIndex | 0);
  }

  private record(slot: number, offLo: number, offHi: number): void {
    this.harvestedNow++;
    // The entry is marked RESET by the harvest loop either way: a skipped one is lost.
    if (this.skipEveryNth > 0 && ++this.seen % this.skipEveryNth === 0) return;
    let s = this.lastSlot;
    if (s < 0 || this.slotEnc[s] !== (slot | 0)) {
      s = -1;
      for (let i = 0; i < this.slotEnc.length; i++) {
        if (this.slotEnc[i] === (slot | 0)) {
          s = i;
          break;
        }
      }
      if (s < 0) {
        this.badNow++;
        return;
      }
      this.lastSlot = s;
    }
    if (offHi !== 0 || offLo >= this.slotPages[s]!) {
      this.badNow++;
      return;
    }
    const bm = this.bitmaps[s]!;
    // Under the lock: plain read-modify-write is enough (the lock orders it for every thread).
    bm[offLo >>> 5] = bm[offLo >>> 5]! | (1 << (offLo & 31));
  }

  /**
   * Hand every recorded page to `sink` (slot by slot, ascending) and clear the bitmaps. Only the
   * take-and-clear is under the reaper lock (every bit taken was set by a reap whose reset had
   * returned before it unlocked); the sink runs after unlocking. Returns the number of pages.
   */
  drain(sink: DrainSink): number {
    this.lock.lock();
    try {
      this.take();
    } finally {
      this.lock.unlock();
    }
    return this.emitTaken(sink);
  }

  /** Move every bitmap's bits into the private copy (`taken`), clearing them; under the lock. */
  private take(): void {
    for (let s = 0; s < this.bitmaps.length; s++) {
      const bm = this.bitmaps[s]!;
      const taken = this.taken[s]!;
      for (let w = 0; w < bm.length; w++) {
        const bits = bm[w]!;
        taken[w] = bits;
        if (bits !== 0) bm[w] = 0;
      }
    }
  }

  /** Hand every page of the private copy to `sink`, slot by slot, ascending. */
  private emitTaken(sink: DrainSink): number {
    let n = 0;
    for (let s = 0; s < this.taken.length; s++) {
      const taken = this.taken[s]!;
      const enc = this.slotEnc[s]! >>> 0;
      for (let w = 0; w < taken.length; w++) {
        let bits = taken[w]! >>> 0;
        while (bits !== 0) {
          const bit = 31 - Math.clz32(bits & -bits); // lowest first: pages in ascending order
          bits = (bits & ~(1 << bit)) >>> 0;
          sink(enc, w * 32 + bit);
          n++;
        }
      }
    }
    return n;
  }

  stats(): ReaperStats {
    this.lock.lock();
    try {
      const f = this.f64;
      return {
        harvested: f[F_HARVESTED]!,
        resets: f[F_RESETS]!,
        entriesReset: f[F_ENTRIES_RESET]!,
        mismatches: f[F_MISMATCHES]!,
        badEntries: f[F_BAD_ENTRIES]!,
        reaps: f[F_REAPS]!,
      };
    } finally {
      this.lock.unlock();
    }
  }
}
