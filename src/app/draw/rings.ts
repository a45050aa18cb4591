/**
 * One strip per dirty ring: every entry by state — empty (never used), dirty (pushed, not yet
 * harvested), harvested (userspace set RESET, the kernel has not reset it yet), reset (walked
 * by KVM_RESET_DIRTY_RINGS, free again) — with dirty_index, reset_index and the harvester's
 * fetch index marked, and the strip outlined when the ring is soft-full (userspace must
 * harvest before the vCPU may enter the guest again). A harvester that keeps its fetch index
 * to itself (a user's: a C module's is a variable in its memory) gets the position its RESET
 * flags show instead: reset_index plus the harvested entries that follow it in order. For a
 * harvester that collects in ring order, as KVM requires, that is its fetch index.
 */
import { KVM_DIRTY_GFN_F_RESET, KVM_DIRTY_RING_RSVD_ENTRIES } from '../../abi/constants.js';
import { DIRTY_GFN_WORDS } from '../../abi/dirty-gfn.js';
import { VcpuLayout } from '../../kernel/vcpu-layout.js';
import type { Vm } from '../../kernel/vm.js';
import { fitCanvas } from './canvas.js';
import { RING_COLORS } from './palette.js';

const COLS = 256;
const ROW_PX = 5;
const STRIP_GAP = 22;
const LABEL_WIDTH = 84;
const EntryState = { EMPTY: 0, DIRTY: 1, HARVESTED: 2, RESET: 3 } as const;
const RGBA = [0xff30241f, 0xff4444ef, 0xff08b3ea, 0xff4f6f2f];

/** One ring's indices as last drawn (the tests and the screen reader summary read these). */
export interface RingIndices {
  dirty: number;
  reset: number;
  fetch: number;
  /** True: `fetch` is derived from the ring's flags, not told by the harvester. */
  fetchFromFlags: boolean;
  softFull: boolean;
}

export class RingStrips {
  private readonly flags: Int32Array[] = [];
  private readonly ctl: Int32Array[] = [];
  private readonly image: ImageData;
  private readonly pixels: Uint32Array;
  private readonly scratch: OffscreenCanvas;
  readonly size: number;
  readonly rows: number;
  readonly indices: RingIndices[] = [];
  /** Each ring's indices when last drawn, and the width drawn at: an unchanged ring is not redrawn. */
  private readonly drawn: Int32Array;
  private drawnWidth = -1;

  constructor(
    vm: Vm,
    readonly vcpus: number,
    private readonly fetchIndex: ((vcpu: number) => number) | null,
  ) {
    this.size = vm.ringEntries;
    for (let i = 0; i < vcpus; i++) {
      this.flags.push(vm.ringWords(i)!);
      this.ctl.push(vm.vcpuBlock(i).i32);
      this.indices.push({ dirty: 0, reset: 0, fetch: 0, fetchFromFlags: fetchIndex === null, softFull: false });
    }
    this.rows = Math.ceil(this.size / COLS);
    this.scratch = new OffscreenCanvas(Math.min(COLS, this.size), this.rows);
    this.image = new ImageData(Math.min(COLS, this.size), this.rows);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.drawn = new Int32Array(vcpus * 3);
  }

  height(): number {
    return this.vcpus * (this.rows * ROW_PX + STRIP_GAP) + 4;
  }

  /**
   * Redraw up to `maxRings` of the rings whose dirty, reset or fetch index moved since they were
   * last drawn, taking the rings in turn (every ring after a resize): the entries between those
   * indices are the only ones whose state changes, so an idle ring costs three loads, not a
   * repaint, and a frame repaints at most `maxRings` strips.
   */
  draw(canvas: HTMLCanvasElement, width: number, maxRings = this.vcpus): void {
    const ctx = fitCanvas(canvas, width, this.height());
    const all = width !== this.drawnWidth;
    this.drawnWidth = width;
    if (all) {
      ctx.fillStyle = '#0f1218';
      ctx.fillRect(0, 0, width, this.height());
    }
    ctx.imageSmoothingEnabled = false;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    const plotW = width - LABEL_WIDTH - 4;
    const stripH = this.rows * ROW_PX + STRIP_GAP;
    let drawn = 0;
    for (let k = 0; k < this.vcpus && (all || drawn < maxRings); k++) {
      const i = (this.nextRing + k) % this.vcpus;
      if (!all && !this.moved(i)) continue;
      drawn++;
      if (!all) this.nextRing = (i + 1) % this.vcpus;
      const y = 2 + i * stripH;
      const ix = this.fill(i);
      this.remember(i, ix);
      if (!all) {
        ctx.fillStyle = '#0f1218';
        ctx.fillRect(0, y - 2, width, stripH);
      }
      this.scratch.getContext('2d')!.putImageData(this.image, 0, 0);
      ctx.drawImage(this.scratch, LABEL_WIDTH, y, plotW, this.rows * ROW_PX);
      this.marks(ctx, i, ix, y, plotW);
    }
  }

  /** The ring a partial draw looks at first (the one after the last it drew). */
  private nextRing = 0;

  private moved(i: number): boolean {
    // Without the harvester's fetch index, entries turn harvested with no index moving.
    if (this.fetchIndex === null) return true;
    const ctl = this.ctl[i]!;
    const d = this.drawn;
    return (
      d[3 * i] !== Atomics.load(ctl, VcpuLayout.words.DIRTY_INDEX) ||
      d[3 * i + 1] !== Atomics.load(ctl, VcpuLayout.words.RESET_INDEX) ||
      d[3 * i + 2] !== (this.fetchIndex(i) | 0)
    );
  }

  private remember(i: number, ix: RingIndices): void {
    this.drawn[3 * i] = ix.dirty;
    this.drawn[3 * i + 1] = ix.reset;
    this.drawn[3 * i + 2] = ix.fetch;
  }

  /** Colour every entry of ring i into the image; returns its indices. */
  private fill(i: number): RingIndices {
    const ix = this.indices[i]!;
    const ctl = this.ctl[i]!;
    const flags = this.flags[i]!;
    ix.dirty = Atomics.load(ctl, VcpuLayout.words.DIRTY_INDEX) >>> 0;
    ix.reset = Atomics.load(ctl, VcpuLayout.words.RESET_INDEX) >>> 0;
    const size = this.size;
    const mask = size - 1;
    const used = (ix.dirty - ix.reset) >>> 0;
    ix.fetch = this.fetchIndex ? this.fetchIndex(i) >>> 0 : harvestedTo(flags, ix.reset, used, mask);
    ix.softFull = used >= size - KVM_DIRTY_RING_RSVD_ENTRIES;
    const lapped = ix.dirty >= size;
    for (let j = 0; j < size; j++) {
      let s: number;
      if (((j - ix.reset) & mask) < used) {
        const f = Atomics.load(flags, j * DIRTY_GFN_WORDS);
        // In the window but not yet DIRTY: a push between its payload and its flag, drawn as dirty.
        s = (f & KVM_DIRTY_GFN_F_RESET) !== 0 ? EntryState.HARVESTED : EntryState.DIRTY;
      } else {
        s = lapped || j < (ix.dirty & mask) ? EntryState.RESET : EntryState.EMPTY;
      }
      this.pixels[j] = RGBA[s]!;
    }
    return ix;
  }

  private marks(ctx: CanvasRenderingContext2D, ring: number, ix: RingIndices, y: number, plotW: number): void {
    const cols = Math.min(COLS, this.size);
    const h = this.rows * ROW_PX;
    const mark = (index: number, color: string, dy: number): void => {
      const j = index & (this.size - 1);
      const x = LABEL_WIDTH + ((j % cols) + 0.5) * (plotW / cols);
      const row = Math.floor(j / cols);
      ctx.fillStyle = color;
      ctx.fillRect(x - 1, y + row * ROW_PX - 1, 3, ROW_PX + 2);
      ctx.fillRect(x - 3, y + h + dy, 7, 3);
    };
    mark(ix.reset, '#22c55e', 0);
    mark(ix.fetch, '#eab308', 0);
    mark(ix.dirty, '#f8fafc', 0);
    if (ix.softFull) {
      ctx.strokeStyle = RING_COLORS.dirty;
      ctx.lineWidth = 2;
      ctx.strokeRect(LABEL_WIDTH - 1, y - 1, plotW + 2, h + 2);
    }
    ctx.fillStyle = '#cbd5e1';
    ctx.fillText(`ring ${ring}`, 6, y);
    ctx.fillStyle = ix.softFull ? '#fca5a5' : '#94a3b8';
    const used = (ix.dirty - ix.reset) >>> 0;
    ctx.fillText(`${used}/${this.size}`, 6, y + 12);
    ctx.fillStyle = '#94a3b8';
    ctx.fillText(`dirty_index ${ix.dirty}  reset_index ${ix.reset}  ${ix.fetchFromFlags ? 'harvested to' : 'fetch'} ${ix.fetch}`, LABEL_WIDTH + 12, y + h + 5);
    if (ix.softFull) {
      ctx.fillStyle = '#fca5a5';
      ctx.fillText('SOFT-FULL: the vCPU exits with KVM_EXIT_DIRTY_RING_FULL', LABEL_WIDTH + 330, y + h + 5);
    }
  }
}

/** reset_index plus the entries after it, in ring order, whose RESET flag userspace has set. */
function harvestedTo(flags: Int32Array, reset: number, used: number, mask: number): number {
  let k = 0;
  while (k < used && (Atomics.load(flags, ((reset + k) & mask) * DIRTY_GFN_WORDS) & KVM_DIRTY_GFN_F_RESET) !== 0) k++;
  return (reset + k) >>> 0;
}
