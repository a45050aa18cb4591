/**
 * Where the migration's dirty set comes from, for each logging interface, the way QEMU keeps
 * it: records the kernel hands over between syncs land in `pending` (QEMU's per-KVM-slot
 * bitmaps), and a sync moves them into `toSend` (the RAMBlock bitmap the migration walks).
 *
 *  - ring: the existing RingLogCollector — harvest every ring, KVM_RESET_DIRTY_RINGS, then the
 *    entries. It runs at each sync and whenever a vCPU stalls on a full ring (QEMU reaps on
 *    exit 31 from the vCPU thread; here userspace's loop does it and releases the thread).
 *    Pages reach `pending` only after the reset: only then may their contents be read.
 *  - bitmap: the existing BitmapLogCollector — legacy GET (exchange + write-protect) at each
 *    sync.
 *  - clear: manual protect, as QEMU does it: the sync is a GET (a copy; nothing cleared), and
 *    each chunk is CLEARed (its bits re-armed, its pages re-protected) just before the first
 *    page of that chunk is sent. Only the bits this GET returned are cleared, so nothing not
 *    yet synced is ever dropped. With initially-set, this is also what protects memory chunk
 *    by chunk during the bulk pass.
 *
 * The copy-before-reset mutant is the same bug in each mode that has a re-arm step to get
 * wrong: ring — a harvester that sends each harvested page at once, before its reset; clear — a
 * migration that sends a chunk's pages first and CLEARs them afterwards (at the end of the pass).
 * Writes in between are lost; the byte-exact check must catch them. (Legacy GET re-arms and
 * reports in one ioctl, so there is no order to get wrong.)
 */
import { KVM_MEM_LOG_DIRTY_PAGES } from '../../abi/constants.js';
import { bitmapWords } from '../../kernel/dirty-bitmap.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { UserspaceFaults } from '../faults.js';
import type { Vm } from '../../kernel/vm.js';
import { BitmapLogCollector, type LogCollector, type LogMode, RingLogCollector, chunkMaskViews, emitBits } from '../log-collectors.js';
import { PageBitmap } from './page-bitmap.js';
import type { SlotPages } from './slot-pages.js';

export interface TrackerStats {
  /** Records handed over by the kernel: ring entries or set bits. */
  records: number;
  /** Records naming no page of the migrated slots (a kernel or harvester bug). */
  badRecords: number;
  clearCalls: number;
  resetCalls: number;
  entriesReset: number;
  resetMismatches: number;
}

export class DirtyTracker {
  readonly pending: PageBitmap;
  readonly toSend: PageBitmap;
  readonly stats: TrackerStats = {
    records: 0,
    badRecords: 0,
    clearCalls: 0,
    resetCalls: 0,
    entriesReset: 0,
    resetMismatches: 0,
  };
  private readonly collector: LogCollector | null;
  /** clear mode: each slot's last GET, its per-chunk views, and which chunks still need a CLEAR. */
  private readonly getBuffers: Uint32Array[] = [];
  private readonly chunkViews: Uint32Array[][] = [];
  private readonly chunkNeedsClear: Uint8Array[] = [];
  private readonly sendNow: ((g: number) => void) | null;
  /** clear mode, copy-before-reset mutant: CLEAR only after the pass has sent the pages. */
  private readonly clearAfterSend: boolean;
  private readonly intoPending = (slot: number, offLo: number, offHi: number): void => {
    this.stats.records++;
    const g = this.pages.globalPage(slot, offLo, offHi);
    if (g < 0) {
      this.stats.badRecords++;
      return;
    }
    if (this.sendNow !== null) this.sendNow(g);
    else this.pending.set(g);
  };

  constructor(
    readonly mode: LogMode,
    private readonly vm: Vm,
    vcpuCount: number,
    private readonly slots: readonly Memslot[],
    private readonly pages: SlotPages,
    readonly clearChunkPages: number,
    faults: UserspaceFaults,
    /**
     * The copy-before-reset mutant (ring only): send a harvested page on the spot, before the
     * reset, instead of marking it for a later send.
     */
    sendBeforeReset: ((g: number) => void) | null = null,
    /** A user's harvester (--harvester), whatever the log mode: it hands over only pages safe to send. */
    custom: LogCollector | null = null,
  ) {
    this.pending = new PageBitmap(pages.total);
    this.toSend = new PageBitmap(pages.total);
    this.sendNow = mode === 'ring' && faults.copyBeforeReset ? sendBeforeReset : null;
    this.clearAfterSend = mode === 'clear' && faults.copyBeforeReset;
    // The ring collector takes the faults too: under copy-before-reset it hands pages over
    // before its reset, which is when `sendNow` reads them.
    if (custom !== null) this.collector = custom;
    else if (mode === 'ring') this.collector = new RingLogCollector(vm, vcpuCount, slots, faults);
    else if (mode === 'bitmap') this.collector = new BitmapLogCollector(vm, slots);
    else {
      this.collector = null;
      for (const slot of slots) {
        const words = new Uint32Array(bitmapWords(slot.pageCount));
        const views = chunkMaskViews(words, slot.pageCount, clearChunkPages);
        this.getBuffers.push(words);
        this.chunkViews.push(views);
        this.chunkNeedsClear.push(new Uint8Array(views.length));
      }
    }
  }

  /** Release what the collector runs on (a threaded user harvester's workers). */
  async close(): Promise<void> {
    await this.collector?.close?.();
  }

  /** Ring mode: harvest + reset now (vCPUs are stalled on a full ring), into `pending`. */
  collectForStall(): void {
    if (this.collector === null || this.mode !== 'ring') return;
    this.collector.collect(this.intoPending, false);
    this.copyCollectorStats();
  }

  /**
   * A migration sync: collect from the kernel and move everything pending into `toSend`.
   * `final`: every vCPU and device is parked (ring-with-bitmap's device bitmap is read last).
   * Returns the pages newly added to `toSend`.
   */
  sync(final: boolean): number {
    if (this.collector !== null) {
      this.collector.collect(this.intoPending, final);
      this.copyCollectorStats();
    } else {
      this.getAll();
    }
    return this.toSend.absorb(this.pending);
  }

  private copyCollectorStats(): void {
    const cs = this.collector!.stats;
    this.stats.resetCalls = cs.resetCalls;
    this.stats.entriesReset = cs.entriesReset;
    this.stats.resetMismatches = cs.resetMismatches;
  }

  /** clear mode: GET every logged slot (a copy of the live bitmap) into `pending`. */
  private getAll(): void {
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i]!;
      if (!slot.active || (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0 || !slot.hasBitmap) continue;
      const words = this.getBuffers[i]!;
      this.vm.getDirtyLog(slot.encodedSlot, words);
      const needs = this.chunkNeedsClear[i]!;
      const views = this.chunkViews[i]!;
      for (let c = 0; c < views.length; c++) {
        const v = views[c]!;
        let any = 0;
        for (let k = 0; k < v.length; k++) any |= v[k]!;
        needs[c] = any !== 0 ? 1 : 0;
      }
      emitBits(words, 0, slot.encodedSlot, this.intoPending);
    }
  }

  /**
   * Called just before page `page` of slot `slotIndex` is read for sending. In clear mode the
   * first page of a chunk CLEARs that chunk's synced bits (re-protecting those pages), so that
   * a write from now on is recorded again; before that the page must not be read.
   */
  beforeSend(slotIndex: number, page: number): void {
    if (this.collector !== null || this.clearAfterSend) return;
    const c = Math.floor(page / this.clearChunkPages);
    if (this.chunkNeedsClear[slotIndex]![c] !== 0) this.clearChunk(slotIndex, c);
  }

  /**
   * The end of a pass. Nothing is left to CLEAR then, except under the copy-before-reset mutant,
   * which CLEARs here what it should have cleared before sending.
   */
  finishPass(): void {
    if (!this.clearAfterSend) return;
    for (let i = 0; i < this.chunkNeedsClear.length; i++) {
      const needs = this.chunkNeedsClear[i]!;
      for (let c = 0; c < needs.length; c++) if (needs[c] !== 0) this.clearChunk(i, c);
    }
  }

  private clearChunk(slotIndex: number, c: number): void {
    this.chunkNeedsClear[slotIndex]![c] = 0;
    const slot = this.slots[slotIndex]!;
    const first = c * this.clearChunkPages;
    const num = Math.min(this.clearChunkPages, slot.pageCount - first);
    this.vm.clearDirtyLog(slot.encodedSlot, first, num, this.chunkViews[slotIndex]![c]!);
    this.stats.clearCalls++;
  }
}
