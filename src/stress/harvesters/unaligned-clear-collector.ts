/**
 * A manual-protect harvester that tries to CLEAR from the first dirty page of each chunk rather
 * than from the chunk's 64-aligned start — what a harvester written against a sloppy reading of
 * the API might do. The real kernel refuses an unaligned `first_page` with EINVAL before it
 * looks at anything (docs/PROTOCOL.md section 5, check 3), so this harvester falls back to the
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

/**
 * KVM_CLEAR_DIRTY_LOG's `first_page` must be a multiple of this (one u64 word of the bitmap),
 * and so must `num_pages` unless the range ends at the slot's end (docs/PROTOCOL.md section 5).
 */
export const CLEAR_ALIGN_PAGES = 64;
/** u32 words of a mask per CLEAR_ALIGN_PAGES pages. */
const MASK_WORDS_PER_ALIGN = CLEAR_ALIGN_PAGES / 32;

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
   * Scratch masks for unaligned CLEARs, one view per length in CLEAR_ALIGN_PAGES units (made
   * once: the collection allocates nothing). They cover a chunk plus the CLEAR_ALIGN_PAGES
   * pages an unaligned start can push it past.
   */
  private readonly scratchViews: Uint32Array[] = [];

  constructor(
    readonly vm: Vm,
    private readonly slots: readonly Memslot[],
    /** Pages per chunk: a multiple of CLEAR_ALIGN_PAGES. */
    readonly chunkPages: number,
  ) {
    this.bitmaps = new SlotBitmaps(chunkPages);
    const scratch = new Uint32Array(bitmapWords(chunkPages + CLEAR_ALIGN_PAGES));
    for (let words = 0; words <= scratch.length; words += MASK_WORDS_PER_ALIGN) this.scratchViews.push(scratch.subarray(0, words));
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
        if (p % CLEAR_ALIGN_PAGES === 0 || !this.clearUnaligned(slot, words, p, end)) {
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
   * The range is widened to a multiple of CLEAR_ALIGN_PAGES, or to the slot's end, so that only the
   * alignment of `first_page` is wrong. Returns false when the kernel refused it (EINVAL).
   */
  private clearUnaligned(slot: Memslot, words: Uint32Array, p: number, end: number): boolean {
    const num = Math.min(Math.ceil((end - p) / CLEAR_ALIGN_PAGES) * CLEAR_ALIGN_PAGES, slot.pageCount - p);
    const scratch = this.scratchViews[Math.ceil(num / CLEAR_ALIGN_PAGES)]!;
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
