/**
 * Userspace collection for each of KVM's logging interfaces. A collector hands each dirty
 * page to its sink only once the page is safe to read, i.e. once the kernel has re-armed
 * logging for it (docs/PROTOCOL.md, "4. The reset walk and its coalescing" and "5. The bitmap
 * protocol"):
 *  - ring: harvest every ring, KVM_RESET_DIRTY_RINGS (count checked), then the entries;
 *  - bitmap (legacy): KVM_GET_DIRTY_LOG per slot (exchange + protect), then its bits;
 *  - clear (manual protect): GET (a copy), then per chunk KVM_CLEAR_DIRTY_LOG of the bits
 *    just read and at once the pages of that chunk — clearing just before copying, which is
 *    what removes legacy GET's resends.
 * With ring-with-bitmap, the final collection (vCPUs and devices stopped) reads the slots'
 * bitmaps last, for the writes made with no running vCPU.
 */
import { bitmapWords } from '../kernel/dirty-bitmap.js';
import type { Memslot } from '../kernel/memslots.js';
import { HARVEST_SKIP_PERIOD, type UserspaceFaults } from './faults.js';
import type { Vm } from '../kernel/vm.js';
import { PendingEntries } from './pending-entries.js';
import { RingCollector } from './ring-collector.js';
import type { ReadyPageSink } from './ready-page-sink.js';
import type { DirtyPageCopier } from './dirty-copier.js';
import type { SharedReaper } from './self-reaper.js';

/** Bitmaps are read as u32 words (bit n of word i is page 32·i + n). */
const BITS_PER_WORD = 32;

export const LOG_MODES = ['ring', 'bitmap', 'clear'] as const;
export type LogMode = (typeof LOG_MODES)[number];

export type { ReadyPageSink } from './ready-page-sink.js';

export interface CollectorStats {
  /** Records collected: ring entries, or set bits. */
  records: number;
  collections: number;
  resetCalls: number;
  entriesReset: number;
  resetMismatches: number;
  getCalls: number;
  clearCalls: number;
  /** Set bits read from ring-with-bitmap bitmaps (writes with no running vCPU). */
  deviceBitmapRecords: number;
}

export interface LogCollector {
  readonly mode: LogMode;
  readonly stats: CollectorStats;
  /**
   * One collection. `final`: every vCPU and device is parked (the last sync of an iteration).
   * `ringFull`: the vCPUs stalled on exit 31 that the caller resumes after this collection.
   */
  collect(sink: ReadyPageSink, final: boolean, ringFull?: readonly number[]): number;
  /**
   * Resolves once the collector can collect (a threaded user harvester's threads have loaded
   * its module): the run starts its writers after it, so loading is not counted as a stall.
   */
  ready?(): Promise<void>;
  /** Release what the collector runs on (a threaded user harvester's workers); after the run. */
  close?(): Promise<void>;
  /**
   * A collector whose pages are reported on other threads: copy each there, as it is reported,
   * with `copier`'s buffers, and hand the records to `oracle` (and their copies' outcomes to
   * `copier`) when the collection ends, instead of to the collection's sink.
   */
  copyOnReport?(copier: DirtyPageCopier, oracle: ReadyPageSink): void;
  /** Ring modes: the harvester's next index to read in vCPU i's ring (what a live view draws). */
  fetchIndex?(vcpu: number): number;
  /**
   * Set by a collector that drains this reaper: the run's vCPU threads then reap their own rings
   * into it on exit 31 (the self-reap design). Any other collector is the only reaper of the
   * rings, and the vCPUs stall on exit 31 until it has collected (the hand-off design).
   */
  readonly selfReaper?: SharedReaper;
}

/** Zeroed statistics, for every collector (those of other modules too). */
export function emptyCollectorStats(): CollectorStats {
  return {
    records: 0,
    collections: 0,
    resetCalls: 0,
    entriesReset: 0,
    resetMismatches: 0,
    getCalls: 0,
    clearCalls: 0,
    deviceBitmapRecords: 0,
  };
}

/** Emit every set bit of `words` (bit n = page `firstPage` + n) to the sink; returns how many. */
export function emitBits(words: Uint32Array, firstPage: number, slot: number, sink: ReadyPageSink): number {
  let n = 0;
  for (let i = 0; i < words.length; i++) {
    let b = words[i]! >>> 0;
    while (b !== 0) {
      const bit = 31 - Math.clz32(b);
      b = (b & ~(1 << bit)) >>> 0;
      sink(slot, firstPage + i * BITS_PER_WORD + bit, 0);
      n++;
    }
  }
  return n;
}

/**
 * Views of a slot's GET buffer `words`, one per CLEAR chunk of `chunkPages` pages: exactly the
 * mask KVM_CLEAR_DIRTY_LOG takes for that chunk (64-bit words, from the chunk's first page).
 * Made once per buffer, so a collection allocates nothing.
 */
export function chunkMaskViews(words: Uint32Array, pageCount: number, chunkPages: number): Uint32Array[] {
  const views: Uint32Array[] = [];
  for (let first = 0; first < pageCount; first += chunkPages) {
    const num = Math.min(chunkPages, pageCount - first);
    const firstWord = first / BITS_PER_WORD;
    views.push(words.subarray(firstWord, firstWord + bitmapWords(num)));
  }
  return views;
}

/**
 * Per-slot GET buffers, allocated once; with `chunkPages`, also each buffer's CLEAR chunk
 * masks (chunkMaskViews), made once per buffer.
 */
export class SlotBitmaps {
  private readonly buffers = new Map<number, Uint32Array>();
  private readonly chunkViews = new Map<number, Uint32Array[]>();

  constructor(private readonly chunkPages = 0) {}

  for(slot: Memslot): Uint32Array {
    let b = this.buffers.get(slot.encodedSlot);
    if (!b || b.length !== bitmapWords(slot.pageCount)) {
      b = new Uint32Array(bitmapWords(slot.pageCount));
      this.buffers.set(slot.encodedSlot, b);
    }
    return b;
  }

  /** The CLEAR chunk masks over `slot`'s buffer (as `for` returns it). */
  chunks(slot: Memslot): Uint32Array[] {
    const words = this.for(slot);
    let v = this.chunkViews.get(slot.encodedSlot);
    if (!v || v[0]?.buffer !== words.buffer) {
      v = chunkMaskViews(words, slot.pageCount, this.chunkPages);
      this.chunkViews.set(slot.encodedSlot, v);
    }
    return v;
  }
}

/** Legacy GET of every logged slot's bitmap, emitting each page (safe: GET protected them). */
export function collectLegacyBitmaps(vm: Vm, slots: readonly Memslot[], buffers: SlotBitmaps, sink: ReadyPageSink): number {
  let n = 0;
  for (const slot of slots) {
    if (!slot.active || !slot.hasBitmap) continue;
    const words = buffers.for(slot);
    vm.getDirtyLog(slot.encodedSlot, words);
    n += emitBits(words, 0, slot.encodedSlot, sink);
  }
  return n;
}

export class RingLogCollector implements LogCollector {
  readonly mode = 'ring' as const;
  readonly stats = emptyCollectorStats();
  private readonly ring: RingCollector;
  /** Entries harvested this collection, held until the reset returns. */
  private readonly pending: PendingEntries;
  private readonly bitmaps = new SlotBitmaps();
  private readonly copyBeforeReset: boolean;

  constructor(
    readonly vm: Vm,
    vcpuCount: number,
    private readonly slots: readonly Memslot[],
    /** Required, not defaulted: a collector built without the run's faults hides its known bugs. */
    faults: UserspaceFaults,
    /** The rings' first free-running index (Vm.presetRingIndex). */
    ringStart = 0,
  ) {
    this.ring = new RingCollector(vm, vcpuCount, {
      skipEveryNth: faults.harvestSkipsEntry ? HARVEST_SKIP_PERIOD : 0,
      startIndex: ringStart,
      ordering: faults.harvestOrdering,
    });
    this.pending = new PendingEntries(vm.ringEntries * vcpuCount);
    this.copyBeforeReset = faults.copyBeforeReset;
  }

  fetchIndex(vcpu: number): number {
    return this.ring.fetchIndex(vcpu);
  }

  collect(sink: ReadyPageSink, final: boolean): number {
    this.pending.clear();
    const harvested = this.ring.harvestEntries(this.pending.push);
    if (this.copyBeforeReset) this.pending.emit(sink); // mutant: pages read while still writable
    if (harvested > 0) this.ring.reset(harvested);
    if (!this.copyBeforeReset) this.pending.emit(sink);
    let n = this.pending.count;
    if (final && this.vm.ringWithBitmap) {
      // The device bitmap comes last of all, when nothing can write any more.
      const bits = collectLegacyBitmaps(this.vm, this.slots, this.bitmaps, sink);
      this.stats.deviceBitmapRecords += bits;
      this.stats.getCalls += this.slots.length;
      n += bits;
    }
    this.stats.records += n;
    this.stats.collections++;
    this.stats.resetCalls = this.ring.resetCalls;
    this.stats.entriesReset = this.ring.entriesResetTotal;
    this.stats.resetMismatches = this.ring.mismatches.length;
    return n;
  }
}

/**
 * Ring logging where the vCPU threads reap their own rings on exit 31 (QEMU's reaction) and
 * userspace reaps every ring periodically and at the final sync, all through one SharedReaper:
 * pages reach the sink only after the reset that re-protected them has returned. Every page a
 * vCPU thread reaped reaches the sink at the next collection (as QEMU's reaper feeds the slot
 * bitmap the migration thread reads), so the oracle and the copy see the same pages as with
 * the hand-off design.
 */
export class SelfReapLogCollector implements LogCollector {
  readonly mode = 'ring' as const;
  readonly stats = emptyCollectorStats();
  private readonly bitmaps = new SlotBitmaps();
  private drained = 0;
  private sink: ReadyPageSink = () => {};
  private readonly drainSink = (slot: number, offset: number): void => {
    this.drained++;
    this.sink(slot, offset, 0);
  };

  private readonly copyBeforeReset: boolean;

  constructor(
    readonly vm: Vm,
    readonly selfReaper: SharedReaper,
    private readonly slots: readonly Memslot[],
    /** The run's faults: copy-before-reset here; harvest-skips-entry is in the reaper's buffers. */
    faults: UserspaceFaults,
  ) {
    this.copyBeforeReset = faults.copyBeforeReset;
  }

  collect(sink: ReadyPageSink, final: boolean): number {
    this.sink = sink;
    this.drained = 0;
    if (this.copyBeforeReset) {
      // Mutant: this thread's reap hands its pages over before its reset (vCPU reaps stay correct).
      this.selfReaper.reapCopyingBeforeReset(this.drainSink);
    } else {
      this.selfReaper.reap(-1);
    }
    this.selfReaper.drain(this.drainSink);
    let n = this.drained;
    if (final && this.vm.ringWithBitmap) {
      const bits = collectLegacyBitmaps(this.vm, this.slots, this.bitmaps, sink);
      this.stats.deviceBitmapRecords += bits;
      this.stats.getCalls += this.slots.length;
      n += bits;
    }
    const r = this.selfReaper.stats();
    this.stats.records = r.harvested + this.stats.deviceBitmapRecords;
    this.stats.collections++;
    this.stats.resetCalls = r.resets;
    this.stats.entriesReset = r.entriesReset;
    this.stats.resetMismatches = r.mismatches;
    return n;
  }
}

export class BitmapLogCollector implements LogCollector {
  readonly mode = 'bitmap' as const;
  readonly stats = emptyCollectorStats();
  private readonly bitmaps = new SlotBitmaps();

  constructor(
    readonly vm: Vm,
    private readonly slots: readonly Memslot[],
  ) {}

  collect(sink: ReadyPageSink): number {
    const n = collectLegacyBitmaps(this.vm, this.slots, this.bitmaps, sink);
    this.stats.getCalls += this.slots.length;
    this.stats.records += n;
    this.stats.collections++;
    return n;
  }
}

export class ManualLogCollector implements LogCollector {
  readonly mode = 'clear' as const;
  readonly stats = emptyCollectorStats();
  private readonly bitmaps: SlotBitmaps;

  constructor(
    readonly vm: Vm,
    private readonly slots: readonly Memslot[],
    /** Pages per CLEAR: a multiple of 64. */
    readonly chunkPages: number,
  ) {
    this.bitmaps = new SlotBitmaps(chunkPages);
  }

  collect(sink: ReadyPageSink): number {
    let n = 0;
    for (const slot of this.slots) {
      if (!slot.active || !slot.hasBitmap) continue;
      const words = this.bitmaps.for(slot);
      this.vm.getDirtyLog(slot.encodedSlot, words);
      this.stats.getCalls++;
      const views = this.bitmaps.chunks(slot);
      for (let c = 0; c < views.length; c++) {
        const mask = views[c]!;
        let any = 0;
        for (let i = 0; i < mask.length; i++) any |= mask[i]!;
        if (any === 0) continue;
        const first = c * this.chunkPages;
        const num = Math.min(this.chunkPages, slot.pageCount - first);
        // Clear exactly the bits just read, then read those pages at once.
        this.vm.clearDirtyLog(slot.encodedSlot, first, num, mask);
        this.stats.clearCalls++;
        n += emitBits(mask, first, slot.encodedSlot, sink);
      }
    }
    this.stats.records += n;
    this.stats.collections++;
    return n;
  }
}

export function createCollector(
  mode: LogMode,
  vm: Vm,
  vcpuCount: number,
  slots: readonly Memslot[],
  chunkPages: number,
  faults: UserspaceFaults,
  ringStart = 0,
): LogCollector {
  switch (mode) {
    case 'ring':
      return new RingLogCollector(vm, vcpuCount, slots, faults, ringStart);
    case 'bitmap':
      return new BitmapLogCollector(vm, slots);
    case 'clear':
      return new ManualLogCollector(vm, slots, chunkPages);
  }
}
