/**
 * Memslots: the table in shared memory, and each slot's buffers (guest page data, one SPTE word
 * per page, and the dirty bitmap when the VM logs by bitmap).
 *
 * The table lives in shared memory so that every thread sees the same slots; buffers are
 * SharedArrayBuffers handed to each thread once (`attach`). Changes go through the VM's
 * ioctl (`Vm.setUserMemoryRegion`) under slots_lock.
 */
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_MAX_NR_PAGES, PAGE_SIZE, PAGE_WORDS, U32_RANGE, encodeSlot } from '../abi/constants.js';
import { MEMSLOT_TABLE_ENTRIES, type MemslotBlock, MemslotLayout, MemslotState, SPTE_BYTES, SpteBits } from './memslot-layout.js';
import { SharedBlock } from '../abi/layout.js';
import { assert } from '../base/assert.js';
import { type BitmapScan, allocateBitmap, bitmapScanner, memoryBitmapBytes } from './bitmap-simd-scan.js';
import { gfnTrackBytes } from './page-track-layout.js';
import { modelledWriteProtect } from './mmu-wmm.js';
import { mem } from './wmm/mem.js';

const W = MemslotLayout.words;
/** The kernel's bitmap word covers 64 pages (an unsigned long); bitmaps are rounded up to it. */
const PAGES_PER_BITMAP_WORD = 64;
const BYTES_PER_BITMAP_WORD = 8;
/** A slot's bitmap allocation holds two bitmaps: the live one and the legacy GET snapshot. */
const BITMAP_HALVES = 2;
const WORD_BYTES = Uint32Array.BYTES_PER_ELEMENT;

/** Where a new memslot lies: what KVM_SET_USER_MEMORY_REGION decoded from its argument. */
export interface SlotPlacement {
  readonly asId: number;
  readonly id: number;
  readonly pageCount: number;
  readonly baseGfn: number;
}

/** The SharedArrayBuffers behind one memslot; plain data, safe to post to a worker. */
export interface SlotBuffers {
  /** Guest page data, pageCount × 4 KiB. */
  readonly memory: SharedArrayBuffer;
  /** One Int32 SPTE word per page (SpteBits). */
  readonly spte: SharedArrayBuffer;
  /** Dirty bitmap: 2 × ALIGN(pageCount, 64) / 8 bytes, the second half for the legacy GET snapshot. */
  readonly bitmap: SharedArrayBuffer | null;
  /** The shared WebAssembly.Memory whose buffer `bitmap` is (a large slot: bitmap-simd-scan.ts), or none. */
  readonly bitmapMemory?: WebAssembly.Memory | null;
  /**
   * Page write-tracking: gfn_write_track, one u16 count per page. Allocated with the
   * slot (KVM allocates it with the slot once any write tracking is in use; 2 bytes per 4 KiB
   * page is cheap enough to always have), so workers receive it with the slot's other buffers.
   */
  readonly gfnTrack: SharedArrayBuffer;
}

/** Bytes of one dirty bitmap for `pageCount` pages (rounded up to 64 pages, as KVM does). */
export function bitmapBytes(pageCount: number): number {
  return Math.ceil(pageCount / PAGES_PER_BITMAP_WORD) * BYTES_PER_BITMAP_WORD;
}

export function allocateSlotBuffers(pageCount: number, withBitmap: boolean): SlotBuffers {
  const bitmap = withBitmap ? allocateBitmap(BITMAP_HALVES * bitmapBytes(pageCount)) : null;
  return {
    memory: new SharedArrayBuffer(pageCount * PAGE_SIZE),
    spte: new SharedArrayBuffer(pageCount * SPTE_BYTES),
    bitmap: bitmap?.buffer ?? null,
    bitmapMemory: bitmap?.memory ?? null,
    gfnTrack: new SharedArrayBuffer(gfnTrackBytes(pageCount)),
  };
}

/** One active memslot as seen by one thread: the table entry plus typed views of its buffers. */
export class Memslot {
  readonly mem32: Uint32Array;
  readonly memBytes: Uint8Array;
  readonly spte: Int32Array;
  /** Write-track counts, one u16 per page, accessed with Atomics under mmu_lock (src/kernel/page-track.ts). */
  readonly gfnTrack: Uint16Array;
  /** Live dirty bitmap as Int32 words (Atomics), or null. */
  bitmap: Int32Array | null;
  /** The same live bitmap as unsigned words, for plain copies (manual-protect GET). */
  bitmapU32: Uint32Array | null;
  /**
   * The same live bitmap as the kernel's 64-page words, for the legacy GET's plain scan: one
   * BigInt64 load tests two of the Int32 words, and V8 compiles the scan's ORs and its
   * comparison with 0n to machine words (no BigInt is allocated once it is optimised).
   */
  bitmapU64: BigUint64Array | null;
  /** The legacy GET snapshot half of the bitmap allocation. */
  bitmapSnapshot: Uint32Array | null;
  /** The SIMD scan of the live bitmap, or null: then GET and CLEAR scan in JavaScript, with the same results. */
  bitmapScan: BitmapScan | null;
  /** Encoded as in ring entries (encodeSlot). */
  readonly encodedSlot: number;
  readonly asId: number;
  readonly id: number;
  readonly pageCount: number;
  readonly baseGfn: number;

  /** Entry generation this view was built at; a view is stale once the entry's moves on. */
  readonly builtGeneration: number;

  constructor(
    readonly tableIndex: number,
    private readonly entry: MemslotBlock,
    readonly buffers: SlotBuffers,
  ) {
    const w = entry.i32;
    this.builtGeneration = Atomics.load(w, W.GENERATION);
    const at = readPlacement(w);
    this.asId = at.asId;
    this.id = at.id;
    this.pageCount = at.pageCount;
    this.baseGfn = at.baseGfn;
    this.encodedSlot = encodeSlot(this.asId, this.id);
    this.mem32 = new Uint32Array(buffers.memory);
    this.memBytes = new Uint8Array(buffers.memory);
    this.spte = new Int32Array(buffers.spte);
    this.gfnTrack = new Uint16Array(buffers.gfnTrack, 0, this.pageCount);
    this.bitmap = null;
    this.bitmapU32 = null;
    this.bitmapU64 = null;
    this.bitmapSnapshot = null;
    this.bitmapScan = null;
    this.attachBitmap(buffers.bitmap, buffers.bitmapMemory ?? null);
  }

  attachBitmap(buffer: SharedArrayBuffer | null, memory: WebAssembly.Memory | null): void {
    if (!buffer) {
      this.bitmap = null;
      this.bitmapU32 = null;
      this.bitmapU64 = null;
      this.bitmapSnapshot = null;
      this.bitmapScan = null;
      return;
    }
    const halfBytes = bitmapBytes(this.pageCount);
    // The allocation holds the live bitmap and the legacy GET snapshot, one half each (rounded
    // up to whole WebAssembly pages when a Memory holds it, even if this thread lacks the Memory).
    const bytes = BITMAP_HALVES * halfBytes;
    const ok = buffer.byteLength === bytes || buffer.byteLength === memoryBitmapBytes(bytes);
    assert(ok, `memslot ${this.id}: a bitmap of ${buffer.byteLength} B for ${this.pageCount} pages`);
    assert(memory === null || memory.buffer.byteLength === buffer.byteLength, `memslot ${this.id}: the bitmap's Memory is not its buffer`);
    this.bitmapScan = bitmapScanner(memory);
    const halfWords = halfBytes / WORD_BYTES;
    this.bitmap = new Int32Array(buffer, 0, halfWords);
    this.bitmapU32 = new Uint32Array(buffer, 0, halfWords);
    this.bitmapU64 = new BigUint64Array(buffer, 0, halfBytes / BigUint64Array.BYTES_PER_ELEMENT);
    this.bitmapSnapshot = new Uint32Array(buffer, halfBytes, halfWords);
  }

  /** KVM_MEM_* flags, read atomically: logging can be toggled while vCPUs run. */
  get flags(): number {
    return Atomics.load(this.entry.i32, W.FLAGS);
  }

  get logDirty(): boolean {
    return (Atomics.load(this.entry.i32, W.FLAGS) & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
  }

  /** Whether KVM has a dirty bitmap for this slot now (logging on, bitmaps in use). */
  get hasBitmap(): boolean {
    return Atomics.load(this.entry.i32, W.HAS_BITMAP) !== 0;
  }

  get generation(): number {
    return Atomics.load(this.entry.i32, W.GENERATION);
  }

  get active(): boolean {
    return Atomics.load(this.entry.i32, W.STATE) === MemslotState.ACTIVE;
  }

  /**
   * Whether this view still describes its table entry: active, and not moved, deleted or
   * recreated since it was built. `active` alone is not enough for a cached view: a delete and
   * a create at the same index, or a move, leave the entry ACTIVE while the view's base, size
   * and buffers belong to the old slot.
   */
  get current(): boolean {
    const w = this.entry.i32;
    return (
      Atomics.load(w, W.STATE) === MemslotState.ACTIVE &&
      Atomics.load(w, W.GENERATION) === this.builtGeneration
    );
  }

  /** Word index of a page's first u32 in `mem32`. */
  pageWord(page: number): number {
    return page * PAGE_WORDS;
  }

  /** Write-protect every page (used when logging is turned on). Caller holds mmu_lock. */
  writeProtectAll(): number {
    const spte = this.spte;
    let changed = 0;
    for (let p = 0; p < spte.length; p++) {
      if (mem.active ? modelledWriteProtect(spte, p) : (Atomics.and(spte, p, ~SpteBits.WRITABLE) & SpteBits.WRITABLE) !== 0) changed++;
    }
    return changed;
  }
}

/** The shared memslot table: MEMSLOT_TABLE_ENTRIES fixed entries in one SharedArrayBuffer. */
export class MemslotTable {
  readonly buffer: SharedArrayBuffer;
  private readonly entries: MemslotBlock[] = [];
  /** This thread's views of active slots, by table index (null = not attached here). */
  private readonly slots: (Memslot | null)[] = [];
  /** Buffers this thread knows of, by table index. */
  private readonly buffersByIndex: (SlotBuffers | null)[] = [];

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(MemslotLayout.bytes * MEMSLOT_TABLE_ENTRIES);
    for (let i = 0; i < MEMSLOT_TABLE_ENTRIES; i++) {
      this.entries.push(new SharedBlock(MemslotLayout, this.buffer, i * MemslotLayout.bytes));
      this.slots.push(null);
      this.buffersByIndex.push(null);
    }
  }

  entry(index: number): MemslotBlock {
    const e = this.entries[index];
    if (!e) throw new RangeError(`memslot table index ${index}`);
    return e;
  }

  /** Give this thread the buffers of table entry `index` (done once per slot per thread). */
  attach(index: number, buffers: SlotBuffers): void {
    this.buffersByIndex[index] = buffers;
    this.slots[index] = null; // rebuilt lazily from the entry
  }

  buffersOf(index: number): SlotBuffers | null {
    return this.buffersByIndex[index] ?? null;
  }

  /** Every entry's buffers this thread knows, for handing to another thread. */
  allBuffers(): (SlotBuffers | null)[] {
    return this.buffersByIndex.slice();
  }

  /** The active slot at a table index, as a view for this thread (null if free or unattached). */
  at(index: number): Memslot | null {
    const entry = this.entries[index];
    if (!entry || Atomics.load(entry.i32, W.STATE) !== MemslotState.ACTIVE) return null;
    const gen = Atomics.load(entry.i32, W.GENERATION);
    let slot = this.slots[index] ?? null;
    if (slot && slot.builtGeneration === gen) return slot;
    const buffers = this.buffersByIndex[index];
    if (!buffers) return null;
    slot = new Memslot(index, entry, buffers);
    this.slots[index] = slot;
    return slot;
  }

  /** Whether `view` is still what `at` returns for its index: a cached view needs no new lookup. */
  stillAt(view: Memslot): boolean {
    return this.slots[view.tableIndex] === view && view.current;
  }

  /** Find an active slot by (as_id, id). */
  findById(asId: number, id: number): Memslot | null {
    const i = this.indexOfId(asId, id);
    return i < 0 ? null : this.at(i);
  }

  /** Table index of an active slot by (as_id, id), or -1. */
  indexOfId(asId: number, id: number): number {
    for (let i = 0; i < this.entries.length; i++) {
      const w = this.entries[i]!.i32;
      if (
        Atomics.load(w, W.STATE) === MemslotState.ACTIVE &&
        Atomics.load(w, W.ID) === id &&
        Atomics.load(w, W.AS_ID) === asId
      ) {
        return i;
      }
    }
    return -1;
  }

  /** Find the active slot of address space `asId` that contains `gfn`. */
  findByGfn(asId: number, gfn: number): Memslot | null {
    for (let i = 0; i < this.entries.length; i++) {
      const slot = this.at(i);
      if (slot && slot.asId === asId && gfn >= slot.baseGfn && gfn - slot.baseGfn < slot.pageCount) return slot;
    }
    return null;
  }

  /** Every active slot this thread can see. */
  active(): Memslot[] {
    const out: Memslot[] = [];
    for (let i = 0; i < this.entries.length; i++) {
      const s = this.at(i);
      if (s) out.push(s);
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Changes, made by KVM_SET_USER_MEMORY_REGION under slots_lock (memslot-ioctl.ts). Each bumps
  // the entry's generation, so that cached views (Memslot.current) see they are stale.

  /** Fill free entry `index` and publish it ACTIVE last: a thread that sees ACTIVE sees the rest. */
  activate(index: number, at: SlotPlacement): void {
    const e = this.entry(index).i32;
    Atomics.store(e, W.AS_ID, at.asId);
    Atomics.store(e, W.ID, at.id);
    Atomics.store(e, W.NPAGES, at.pageCount);
    storeBaseGfn(e, at.baseGfn);
    Atomics.store(e, W.FLAGS, 0);
    Atomics.store(e, W.HAS_BITMAP, 0);
    Atomics.add(e, W.GENERATION, 1);
    Atomics.store(e, W.STATE, MemslotState.ACTIVE);
  }

  /** Free entry `index` (a deleted slot); its bitmap goes with it. */
  deactivate(index: number): void {
    const e = this.entry(index).i32;
    Atomics.store(e, W.STATE, MemslotState.FREE);
    Atomics.store(e, W.HAS_BITMAP, 0);
    Atomics.add(e, W.GENERATION, 1);
  }

  /** Move entry `index` to a new base gfn. */
  move(index: number, baseGfn: number): void {
    const e = this.entry(index).i32;
    storeBaseGfn(e, baseGfn);
    Atomics.add(e, W.GENERATION, 1);
  }

  /** KVM_MEM_* flags of entry `index` (readers see them live: logging can toggle while vCPUs run). */
  setFlags(index: number, flags: number): void {
    Atomics.store(this.entry(index).i32, W.FLAGS, flags);
  }

  setHasBitmap(index: number, on: boolean): void {
    Atomics.store(this.entry(index).i32, W.HAS_BITMAP, on ? 1 : 0);
  }

  /**
   * Debug check, under slots_lock after a change, of the shared entries: every active entry has
   * a sane size, ids are unique, no two slots of one address space overlap, and a bitmap exists
   * only while logging is on. Of this thread's views: a view that is current still describes
   * its entry (fields change only with a generation bump), and its bitmaps have the words its
   * page count needs.
   */
  checkConsistency(): void {
    const placed: SlotPlacement[] = [];
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!.i32;
      if (Atomics.load(e, W.STATE) !== MemslotState.ACTIVE) continue;
      const at = readPlacement(e);
      assert(at.pageCount > 0 && at.pageCount <= KVM_MEM_MAX_NR_PAGES, `memslot ${at.id}: ${at.pageCount} pages`);
      const logs = (Atomics.load(e, W.FLAGS) & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
      assert(Atomics.load(e, W.HAS_BITMAP) === 0 || logs, `memslot ${at.id} has a bitmap but does not log`);
      for (const o of placed) {
        if (o.asId !== at.asId) continue;
        assert(o.id !== at.id, `memslot id ${at.id} is in the table twice`);
        assert(!(at.baseGfn < o.baseGfn + o.pageCount && o.baseGfn < at.baseGfn + at.pageCount), `memslots ${o.id} and ${at.id} overlap`);
      }
      placed.push(at);
      const view = this.slots[i];
      if (view && view.builtGeneration === Atomics.load(e, W.GENERATION)) checkView(view, at);
    }
  }

  firstFreeIndex(): number {
    for (let i = 0; i < this.entries.length; i++) {
      if (Atomics.load(this.entries[i]!.i32, W.STATE) === MemslotState.FREE) return i;
    }
    return -1;
  }
}

function readPlacement(e: Int32Array): SlotPlacement {
  return {
    asId: Atomics.load(e, W.AS_ID),
    id: Atomics.load(e, W.ID),
    pageCount: Atomics.load(e, W.NPAGES),
    baseGfn: (Atomics.load(e, W.BASE_GFN_HI) >>> 0) * U32_RANGE + (Atomics.load(e, W.BASE_GFN_LO) >>> 0),
  };
}

function checkView(view: Memslot, at: SlotPlacement): void {
  const same = view.asId === at.asId && view.id === at.id && view.pageCount === at.pageCount && view.baseGfn === at.baseGfn;
  assert(same, `memslot ${at.id} changed without a generation bump`);
  if (view.hasBitmap && view.bitmap !== null) checkBitmapShape(view);
}

function storeBaseGfn(e: Int32Array, baseGfn: number): void {
  Atomics.store(e, W.BASE_GFN_LO, baseGfn % U32_RANGE | 0);
  Atomics.store(e, W.BASE_GFN_HI, Math.floor(baseGfn / U32_RANGE) | 0);
}

/** A slot's live bitmap and its snapshot each hold exactly the words its page count needs. */
export function checkBitmapShape(slot: Memslot): void {
  const words = bitmapBytes(slot.pageCount) / WORD_BYTES;
  assert(slot.bitmap !== null && slot.bitmap.length === words, `memslot ${slot.id}: live bitmap is not ${words} words`);
  assert(slot.bitmapSnapshot !== null && slot.bitmapSnapshot.length === words, `memslot ${slot.id}: snapshot is not ${words} words`);
}
