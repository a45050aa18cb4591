/**
 * Guest memory, one cell per page, in the order of the memslots: recorded (reported to userspace
 * this iteration and protected again), written since the last collection (writable SPTE, and the
 * page carries this iteration's stamp), writable (not written this iteration), write-protected.
 * A lost page flashes. Read from the SPTE words and page headers in shared memory, and from the
 * oracle's reported-page map (userspace's worker publishes it).
 *
 * A pass over every page is spread over several animation frames (drawSlice): reading a page's
 * stamp is a cache and TLB miss, and a whole pass over 256 MiB takes milliseconds that one frame
 * cannot spare when the vCPU workers keep the cores busy. The canvas shows the last completed pass.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { GuestPageWords } from '../../guest/guest-memory.js';
import { SpteBits } from '../../kernel/memslot-layout.js';
import type { Memslot } from '../../kernel/memslots.js';
import { fitCanvas } from './canvas.js';
import { HEAT_RGBA } from './palette.js';

const WORDS_PER_PAGE = PAGE_SIZE / Uint32Array.BYTES_PER_ELEMENT;
/** A lost page alternates colours this often. */
const FLASH_MS = 250;

export interface HeatCounts {
  protected: number;
  writable: number;
  written: number;
  recorded: number;
  lost: number;
}

export class Heatmap {
  readonly pageCount: number;
  readonly cols: number;
  readonly rows: number;
  private readonly image: ImageData;
  private readonly pixels: Uint32Array;
  private readonly scratch: OffscreenCanvas;
  private readonly lost = new Set<number>();
  private readonly starts = new Map<number, number>();
  /** The counts of the last completed pass. */
  readonly counts: HeatCounts = { protected: 0, writable: 0, written: 0, recorded: 0, lost: 0 };
  /** The counts of the pass under way, and its next page. */
  private readonly partial: HeatCounts = { protected: 0, writable: 0, written: 0, recorded: 0, lost: 0 };
  private cursor = 0;

  constructor(
    private readonly slots: readonly Memslot[],
    private readonly reported: () => Readonly<Uint8Array>,
  ) {
    let start = 0;
    for (const s of slots) {
      this.starts.set(s.id, start);
      start += s.pageCount;
    }
    this.pageCount = start;
    this.cols = 2 ** Math.ceil(Math.log2(Math.sqrt(Math.max(1, start))));
    this.rows = Math.ceil(start / this.cols);
    this.image = new ImageData(this.cols, this.rows);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.scratch = new OffscreenCanvas(this.cols, this.rows);
  }

  /** Mark a page lost (memslot id, page offset): it flashes from now on. */
  markLost(slotId: number, offset: number): void {
    const start = this.starts.get(slotId);
    if (start !== undefined) this.lost.add(start + offset);
  }

  /** A whole pass, drawn at once (the canvas is current on return). */
  draw(canvas: HTMLCanvasElement, sizePx: number, iteration: number, nowMs: number): void {
    this.cursor = 0;
    this.drawSlice(canvas, sizePx, iteration, nowMs, this.pageCount);
  }

  /**
   * Colour the next `pages` pages of the pass under way; when that ends the pass, show it on the
   * canvas, publish its counts and return true (the next call starts a new pass).
   */
  drawSlice(canvas: HTMLCanvasElement, sizePx: number, iteration: number, nowMs: number, pages: number): boolean {
    const end = Math.min(this.pageCount, this.cursor + Math.max(1, pages));
    if (this.cursor === 0) this.partial.protected = this.partial.writable = this.partial.written = this.partial.recorded = 0;
    this.fill(this.cursor, end, iteration);
    this.cursor = end;
    if (end < this.pageCount) return false;
    this.cursor = 0;
    Object.assign(this.counts, this.partial, { lost: this.lost.size });
    const flash = Math.floor(nowMs / FLASH_MS) % 2 === 0 ? HEAT_RGBA.lost : HEAT_RGBA.lostFlash;
    for (const l of this.lost) this.pixels[l] = flash;
    const ctx = fitCanvas(canvas, sizePx, sizePx * (this.rows / this.cols));
    ctx.imageSmoothingEnabled = false;
    this.scratch.getContext('2d')!.putImageData(this.image, 0, 0);
    ctx.drawImage(this.scratch, 0, 0, sizePx, sizePx * (this.rows / this.cols));
    return true;
  }

  /** Colour pages [from, to) (indices over every slot, in order). */
  private fill(from: number, to: number, iteration: number): void {
    const c = this.partial;
    const reported = this.reported();
    const px = this.pixels;
    let base = 0;
    for (const s of this.slots) {
      const lo = Math.max(from, base);
      const hi = Math.min(to, base + s.pageCount);
      const spte = s.spte;
      const mem = s.mem32;
      for (let g = lo; g < hi; g++) {
        const p = g - base;
        const writable = (Atomics.load(spte, p) & SpteBits.WRITABLE) !== 0;
        // The stamp only matters for a writable page; reading it is a cache (and TLB) miss per page.
        if (writable && mem[p * WORDS_PER_PAGE + GuestPageWords.ITERATION_LO] === iteration) {
          px[g] = HEAT_RGBA.written;
          c.written++;
        } else if (reported[g] === 1) {
          px[g] = HEAT_RGBA.recorded;
          c.recorded++;
        } else if (writable) {
          px[g] = HEAT_RGBA.writable;
          c.writable++;
        } else {
          px[g] = HEAT_RGBA.protected;
          c.protected++;
        }
      }
      base += s.pageCount;
    }
  }
}
