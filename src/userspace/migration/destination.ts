/**
 * The destination side of a migration: its own memory (one SharedArrayBuffer per memslot,
 * never shared with the source VM), and the two ways pages reach it.
 *
 *  - LocalSender: userspace's migration loop writes the destination itself.
 *  - WireSender + DestinationThread: the loop copies each page into a slot of the wire (a
 *    single-producer single-consumer queue in shared memory, MigrationWireLayout), and a
 *    separate destination thread applies them. The source then only reads guest memory, the
 *    destination writes happen on another core, truly overlapping guest writes and harvests,
 *    and a full wire pushes back on the sender as a slow receiver would.
 *
 * Ordering on the wire: the producer fills a slot with plain stores, then publishes it by an
 * Atomics store of HEAD; the consumer Atomics-loads HEAD before reading the slot, and
 * Atomics-stores TAIL after it has copied the page out, which is when the producer may reuse
 * the slot. Counts are free-running u32.
 */
import { PAGE_SIZE, PAGE_WORDS } from '../../abi/constants.js';
import { MigrationWireLayout, type MigrationWireBlock, WIRE_SLOT_HEADER_WORDS, WIRE_SLOT_WORDS, WireSlotWords } from './migration-layout.js';
import { SharedBlock } from '../../abi/layout.js';
import { now } from '../../base/clock.js';
import { TimeoutError, waitAsyncWhileEqual } from '../../platform/async-wait.js';
import { copyPageWords } from '../page-copy.js';
import { NS_PER_MS } from '../../base/units.js';
import { isPowerOfTwo } from '../../base/assert.js';
import { IDLE_WAIT_SLICE_MS, USERSPACE_WAIT_SLICE_MS } from '../thread-timing.js';

const WW = MigrationWireLayout.words;

export class DestinationMemory {
  readonly buffers: SharedArrayBuffer[];
  readonly views: Int32Array[];

  constructor(pageCounts: readonly number[], buffers?: readonly SharedArrayBuffer[]) {
    this.buffers = buffers ? buffers.slice() : pageCounts.map((n) => new SharedArrayBuffer(n * PAGE_SIZE));
    this.views = this.buffers.map((b) => new Int32Array(b));
  }
}

export interface PageSender {
  readonly kind: 'local' | 'wire';
  /** Pages that can be sent now without waiting for the destination. */
  room(): number;
  /** Send page `page` of slot `slotIndex`, read from `src` (that slot's memory). */
  send(slotIndex: number, page: number, src: Int32Array): void;
  /**
   * Where the last send put its copy of the page: `copyWords` from word `copyBase` (valid until
   * the next send; only the sender writes there). Resend accounting reads the header there.
   */
  readonly copyWords: Int32Array;
  readonly copyBase: number;
  /** Wait (at most `ms`) until there is room again. */
  waitForRoom(ms: number): Promise<void>;
  /** Resolve once the destination has applied every page sent. */
  drain(timeoutMs: number): Promise<void>;
  /** No more pages: a destination thread may end once it has applied everything. */
  close(): void;
}

export class LocalSender implements PageSender {
  readonly kind = 'local' as const;

  copyWords: Int32Array;
  copyBase = 0;

  constructor(private readonly destination: DestinationMemory) {
    this.copyWords = destination.views[0] ?? new Int32Array(0);
  }

  room(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  send(slotIndex: number, page: number, src: Int32Array): void {
    const w = page * PAGE_WORDS;
    const dst = this.destination.views[slotIndex]!;
    copyPageWords(src, w, dst, w);
    this.copyWords = dst;
    this.copyBase = w;
  }

  async waitForRoom(): Promise<void> {}
  async drain(): Promise<void> {}
  close(): void {}
}

/** The buffers of a wire: plain data, posted to the destination thread. */
export interface WireBuffers {
  readonly control: SharedArrayBuffer;
  readonly slots: SharedArrayBuffer;
}

export function createWire(slotCount: number): WireBuffers {
  if (!isPowerOfTwo(slotCount)) throw new RangeError(`wire slots must be a power of two (${slotCount})`);
  const control = new SharedBlock(MigrationWireLayout);
  Atomics.store(control.i32, WW.SLOT_COUNT, slotCount);
  return { control: control.buffer, slots: new SharedArrayBuffer(slotCount * WIRE_SLOT_WORDS * Int32Array.BYTES_PER_ELEMENT) };
}

export class WireSender implements PageSender {
  readonly kind = 'wire' as const;
  private readonly block: MigrationWireBlock;
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly slotCount: number;
  private head = 0;
  copyBase = 0;

  constructor(wire: WireBuffers) {
    this.block = new SharedBlock(MigrationWireLayout, wire.control);
    this.slots = new Int32Array(wire.slots);
    this.slotCount = Atomics.load(this.block.i32, WW.SLOT_COUNT);
    this.mask = this.slotCount - 1;
    this.head = Atomics.load(this.block.i32, WW.HEAD) >>> 0;
  }

  /** The wire slots: the destination thread only reads them, so a copy stays put until reused. */
  get copyWords(): Int32Array {
    return this.slots;
  }

  room(): number {
    return this.slotCount - ((this.head - (Atomics.load(this.block.i32, WW.TAIL) >>> 0)) >>> 0);
  }

  send(slotIndex: number, page: number, src: Int32Array): void {
    const base = (this.head & this.mask) * WIRE_SLOT_WORDS;
    const s = this.slots;
    s[base + WireSlotWords.SLOT_INDEX] = slotIndex;
    s[base + WireSlotWords.PAGE] = page;
    copyPageWords(src, page * PAGE_WORDS, s, base + WIRE_SLOT_HEADER_WORDS);
    this.copyBase = base + WIRE_SLOT_HEADER_WORDS;
    this.head = (this.head + 1) >>> 0;
    // Publish: the slot's plain stores above are visible to whoever loads this HEAD.
    Atomics.store(this.block.i32, WW.HEAD, this.head | 0);
    Atomics.notify(this.block.i32, WW.HEAD);
  }

  async waitForRoom(ms: number): Promise<void> {
    const tail = Atomics.load(this.block.i32, WW.TAIL);
    if (this.room() > 0) return;
    await waitAsyncWhileEqual(this.block.i32, WW.TAIL, tail, ms);
  }

  async drain(timeoutMs: number): Promise<void> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const tail = Atomics.load(this.block.i32, WW.TAIL);
      if (tail >>> 0 === this.head) return;
      const left = deadline - now();
      if (left <= 0) throw new TimeoutError(`destination thread: ${(this.head - (tail >>> 0)) >>> 0} pages never applied`, timeoutMs);
      await waitAsyncWhileEqual(this.block.i32, WW.TAIL, tail, Math.min(left, USERSPACE_WAIT_SLICE_MS));
    }
  }

  close(): void {
    Atomics.store(this.block.i32, WW.CLOSED, 1);
    Atomics.notify(this.block.i32, WW.HEAD);
  }

  /** Time the destination spent applying pages, in ms. */
  get applyMs(): number {
    return this.block.f64[MigrationWireLayout.floats.APPLY_NS]! / NS_PER_MS;
  }
}

/** What a destination thread needs: the wire and the destination memory. */
export interface DestinationThreadConfig {
  readonly wire: WireBuffers;
  readonly destinations: readonly SharedArrayBuffer[];
}

/**
 * The destination thread's loop (in a worker): apply pages as they arrive, until the source
 * has closed the wire and everything is applied. Waits are asynchronous, so the worker keeps
 * answering its control port.
 */
export class DestinationThread {
  private readonly block: MigrationWireBlock;
  private readonly slots: Int32Array;
  private readonly memory: DestinationMemory;
  private readonly mask: number;
  error: string | null = null;

  constructor(config: DestinationThreadConfig) {
    this.block = new SharedBlock(MigrationWireLayout, config.wire.control);
    this.slots = new Int32Array(config.wire.slots);
    this.memory = new DestinationMemory([], config.destinations);
    this.mask = Atomics.load(this.block.i32, WW.SLOT_COUNT) - 1;
  }

  async main(): Promise<void> {
    const w = this.block.i32;
    let tail = Atomics.load(w, WW.TAIL) >>> 0;
    try {
      for (;;) {
        const head = Atomics.load(w, WW.HEAD) >>> 0;
        if (head === tail) {
          if (Atomics.load(w, WW.CLOSED) === 1 && (Atomics.load(w, WW.HEAD) >>> 0) === tail) break;
          await waitAsyncWhileEqual(w, WW.HEAD, head | 0, IDLE_WAIT_SLICE_MS);
          continue;
        }
        const t0 = now();
        while (tail !== head) {
          const base = (tail & this.mask) * WIRE_SLOT_WORDS;
          const slotIndex = this.slots[base + WireSlotWords.SLOT_INDEX]!;
          const page = this.slots[base + WireSlotWords.PAGE]!;
          const dst = this.memory.views[slotIndex];
          if (dst === undefined || page < 0 || (page + 1) * PAGE_WORDS > dst.length) {
            throw new Error(`destination: page ${page} of slot ${slotIndex} is outside the destination memory`);
          }
          copyPageWords(this.slots, base + WIRE_SLOT_HEADER_WORDS, dst, page * PAGE_WORDS);
          tail = (tail + 1) >>> 0;
          // The slot is free again once TAIL says so; the producer may be waiting on it.
          Atomics.store(w, WW.TAIL, tail | 0);
          Atomics.notify(w, WW.TAIL);
        }
        this.block.f64[MigrationWireLayout.floats.APPLY_NS]! += (now() - t0) * NS_PER_MS;
      }
    } catch (e) {
      this.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    }
  }
}
