/**
 * A manual-protect harvester that tries to CLEAR from the first dirty page of each chunk rather
 * than from the chunk's 64-aligned start — what a harvester written against a sloppy reading of
 * the API might do. The real kernel refuses an unaligned `first_page` with EINVAL before it
 * looks at anything (kvm-dirty-tracking.md §3, step 3), so this harvester falls back to the
 * aligned CLEAR of the chunk and stays correct; against a kernel that accepts the unaligned
 * range and clears the wrong bits (the `clear-unaligned` mutant) it loses pages. It exists so
 * that the stress harness exercises the unaligned path at all: the standard collectors only
 * ever issue aligned CLEARs.
 */
import { isKvmError } from '../../abi/errno.js';
import { bitmapWords } from '../../kernel/dirty-bitmap.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, SlotBitmaps, emptyCollectorStats } from '../../userspace/log-collectors.js';

export interface UnalignedClearStats {
  /** CLEARs issued with an unaligned first_page. */
  attempts: number;
  /** ...refused with EINVAL (the correct kernel), then retried aligned. */
  refused: number;
  /** ...accepted (only a kernel with the clear-unaligned bug accepts them). */
  accepted: number;
}

function isSet(words: Uint32Array, page: number): boolean {
  return ((words[page >>> 5]! >>> (page & 31)) & 1) !== 0;
}

export class UnalignedClearCollector implements LogCollector {
  readonly mode = 'clear' as const;
  readonly stats: CollectorStats = emptyCollectorStats();
  readonly unaligned: UnalignedClearStats = { attempts: 0, refused: 0, accepted: 0 };
  /** Per slot: the GET buffer and its aligned CLEAR chunk masks (made once). */
  private readonly bitmaps: SlotBitmaps;
  /**
   * Scratch masks for unaligned CLEARs, one view per length in 64-page units (made once: the
   * collection allocates nothing). They cover a chunk plus the 64 pages an unaligned start can
   * push it past.
   */
  private readonly scratchViews: Uint32Array[] = [];

  constructor(
    readonly vm: Vm,
    private readonly slots: readonly Memslot[],
    /** Pages per chunk: a multiple of 64. */
    readonly chunkPages: number,
  ) {
    this.bitmaps = new SlotBitmaps(chunkPages);
    const scratch = new Uint32Array(bitmapWords(chunkPages + 64));
    for (let words = 0; words <= scratch.length; words += 2) this.scratchViews.push(scratch.subarray(0, words));
  }

  collect(sink: ReadyPageSink): number {
    let n = 0;
    for (const slot of this.slots) {
      if (!slot.active || !slot.hasBitmap) continue;
      const words = this.bitmaps.for(slot);
      const chunks = this.bitmaps.chunks(slot);
      this.vm.getDirtyLog(slot.encodedSlot, words);
      this.stats.getCalls++;
      const npages = slot.pageCount;
      for (let first = 0; first < npages; first += this.chunkPages) {
        const end = Math.min(first + this.chunkPages, npages);
        let p = first;
        while (p < end && !isSet(words, p)) p++;
        if (p === end) continue;
        if (p % 64 === 0 || !this.clearUnaligned(slot, words, p, end)) {
          this.vm.clearDirtyLog(slot.encodedSlot, first, end - first, chunks[first / this.chunkPages]!);
          this.stats.clearCalls++;
        }
        for (let q = p; q < end; q++) {
          if (isSet(words, q)) {
            sink(slot.encodedSlot, q, 0);
            n++;
          }
        }
      }
    }
    this.stats.records += n;
    this.stats.collections++;
    return n;
  }

  /**
   * CLEAR the chunk's dirty pages from `p` (unaligned) on: bit k of the mask is page p + k.
   * The range is widened to a multiple of 64 pages, or to the slot's end, so that only the
   * alignment of `first_page` is wrong. Returns false when the kernel refused it (EINVAL).
   */
  private clearUnaligned(slot: Memslot, words: Uint32Array, p: number, end: number): boolean {
    const num = Math.min(Math.ceil((end - p) / 64) * 64, slot.pageCount - p);
    const scratch = this.scratchViews[Math.ceil(num / 64)]!;
    scratch.fill(0);
    for (let q = p; q < end; q++) {
      if (isSet(words, q)) {
        const k = q - p;
        scratch[k >>> 5] = (scratch[k >>> 5]! | (1 << (k & 31))) >>> 0;
      }
    }
    this.unaligned.attempts++;
    try {
      this.vm.clearDirtyLog(slot.encodedSlot, p, num, scratch);
    } catch (e) {
      if (isKvmError(e) && e.errno === 'EINVAL' && e.param === 'first_page') {
        this.unaligned.refused++;
        return false;
      }
      throw e;
    }
    this.stats.clearCalls++;
    this.unaligned.accepted++;
    return true;
  }
}
