/**
 * Coverage of the dirty-log structures' edge states, recorded where they happen: this thread's
 * counters (one CoverageLayout block of a run's coverage buffer), bumped by the kernel code and
 * the harvest loop as they reach a ring's first or last entry, a lap, soft-full, a merge of the
 * reset walk, a bitmap word's high half, a slot's last word, a CLEAR chunk at the slot's end, an
 * SMM memslot, a store through a stale TLB entry while a flush waits...
 *
 * What recording costs when it is off: nothing on the hot paths. The per-store and per-entry
 * recording (a guest store, a push, a harvested entry, a reset entry, a bitmap word) sits inside
 * those paths' existing `if (stepHook.active)` blocks, and installing coverage pins the step
 * points active (step-hook.ts); the rest is on slow paths (a fault, a reset walk's end, a batch,
 * an ioctl's word) behind `if (coverage.active)`; and the reset batch's merges are recorded by
 * a wrapper that its constructor installs only in a thread that records (reset-batch.ts).
 *
 * Each thread has its own module instance, so installing coverage affects only that thread.
 */
import { SharedBlock } from '../abi/layout.js';
import { SMM_AS_ID } from '../abi/constants.js';
import { assert } from '../base/assert.js';
import { CoverageLayout } from './coverage-layout.js';
import { SpteBits } from './memslot-layout.js';
import { pinStepPoints } from './step-hook.js';
import { VcpuLayout, VcpuRequest } from './vcpu-layout.js';

export const Edge = CoverageLayout.floats;

export interface CoverageRecorder {
  /** Whether this thread records; checked only where the comment above says. */
  active: boolean;
  /** This thread's counters, one per edge state (an unused scratch block while off). */
  counts: Float64Array;
}

export const coverage: CoverageRecorder = { active: false, counts: new Float64Array(CoverageLayout.floatCount) };

/** A run's coverage buffer: one block per thread that records (block i for thread i). */
export function coverageBuffer(threads: number): SharedArrayBuffer {
  assert(Number.isInteger(threads) && threads > 0, `a coverage buffer for ${threads} threads`);
  return new SharedArrayBuffer(threads * CoverageLayout.bytes);
}

/** Record into block `thread` of `buffer` from now on, in this thread. */
export function installCoverage(buffer: SharedArrayBuffer, thread: number): void {
  coverage.counts = new SharedBlock(CoverageLayout, buffer, thread * CoverageLayout.bytes).f64;
  coverage.active = true;
  pinStepPoints(true);
}

/** Stop recording in this thread (a reused worker must not write into an earlier run's buffer). */
export function clearCoverage(): void {
  coverage.active = false;
  coverage.counts = new Float64Array(CoverageLayout.floatCount);
  pinStepPoints(false);
}

/** Every thread's counters of `buffer` added up, per edge state (read once the threads are done). */
export function sumCoverage(buffer: SharedArrayBuffer): Float64Array {
  const threads = buffer.byteLength / CoverageLayout.bytes;
  assert(Number.isInteger(threads), `a coverage buffer of ${buffer.byteLength} B is not whole blocks`);
  const sum = new Float64Array(CoverageLayout.floatCount);
  for (let t = 0; t < threads; t++) {
    const block = new SharedBlock(CoverageLayout, buffer, t * CoverageLayout.bytes).f64;
    for (let e = 0; e < sum.length; e++) sum[e]! += block[e]!;
  }
  return sum;
}

export function hit(edge: number): void {
  coverage.counts[edge]! += 1;
}

// ------------------------------------------------------------------------------------------
// Rings

/** The first of each side's three ring edges (first entry, last entry, lap), in layout order. */
export const RingSide = { PUSH: Edge.RING_PUSH_FIRST, HARVEST: Edge.RING_HARVEST_FIRST, RESET: Edge.RING_RESET_FIRST } as const;
for (const [first, last, lap] of [
  [Edge.RING_PUSH_FIRST, Edge.RING_PUSH_LAST, Edge.RING_PUSH_LAP],
  [Edge.RING_HARVEST_FIRST, Edge.RING_HARVEST_LAST, Edge.RING_HARVEST_LAP],
  [Edge.RING_RESET_FIRST, Edge.RING_RESET_LAST, Edge.RING_RESET_LAP],
] as const) {
  assert(last === first + 1 && lap === first + 2, 'ring edges out of order');
}

/** One side of the ring touched the entry of free-running index `index` in a ring of `size`. */
export function noteRingIndex(side: number, index: number, size: number): void {
  const c = coverage.counts;
  const at = index & (size - 1);
  if (at === 0) c[side]! += 1;
  else if (at === size - 1) c[side + 1]! += 1;
  if (index >>> 0 >= size) c[side + 2]! += 1;
}

// ------------------------------------------------------------------------------------------
// Bitmaps

const PAGES_PER_KERNEL_WORD = 64;
const HALF_SHIFT = 5;
/** The first of each operation's five bitmap edges (low, high, first word, last word, odd tail). */
export const BitmapOp = { GET: Edge.BITMAP_GET_LOW, CLEAR: Edge.BITMAP_CLEAR_LOW } as const;
assert(Edge.BITMAP_GET_ODD_TAIL - Edge.BITMAP_GET_LOW === 4 && Edge.BITMAP_CLEAR_ODD_TAIL - Edge.BITMAP_CLEAR_LOW === 4, 'bitmap edges out of order');

/** What a bitmap edge needs of a slot. */
interface SlotShape {
  readonly pageCount: number;
  readonly asId: number;
}

/** A bit of page `page` set in a slot's bitmap. */
export function noteBitmapSet(page: number): void {
  hit((page & (PAGES_PER_KERNEL_WORD >>> 1)) === 0 ? Edge.BITMAP_SET_LOW : Edge.BITMAP_SET_HIGH);
}

/** `op` took (GET) or cleared (CLEAR) bits of the emulator's 32-bit bitmap word `word` of `slot`. */
export function noteBitmapWord(op: number, word: number, slot: SlotShape): void {
  const c = coverage.counts;
  c[op + (word & 1)]! += 1;
  const kernelWord = word >>> 1;
  const kernelWords = Math.ceil(slot.pageCount / PAGES_PER_KERNEL_WORD);
  const last = kernelWord === kernelWords - 1;
  if (kernelWords > 1 && kernelWord === 0) c[op + 2]! += 1;
  if (kernelWords > 1 && last) c[op + 3]! += 1;
  if (last && slot.pageCount % PAGES_PER_KERNEL_WORD !== 0) c[op + 4]! += 1;
  if (slot.asId === SMM_AS_ID) c[Edge.SMM_REPROTECT]! += 1;
}

/**
 * A CLEAR of pages [firstPage, firstPage + numPages) of `slot` cleared the bits `got` of the
 * 32-bit word `word`: the word's edges, and where the range's ends fall.
 */
export function noteClearWord(slot: SlotShape, firstPage: number, numPages: number, word: number, got: number): void {
  noteBitmapWord(BitmapOp.CLEAR, word, slot);
  const end = firstPage + numPages;
  const first = word << HALF_SHIFT;
  const has = (page: number): boolean => page >= first && page - first < 1 << HALF_SHIFT && (got & (1 << (page - first))) !== 0;
  if (firstPage > 0 && has(firstPage)) hit(Edge.CLEAR_CHUNK_FIRST_PAGE);
  if (end < slot.pageCount && has(end - 1)) hit(Edge.CLEAR_CHUNK_LAST_PAGE);
  if (firstPage > 0 && end === slot.pageCount) hit(Edge.CLEAR_SLOT_END_CHUNK);
}

// ------------------------------------------------------------------------------------------
// Memslots, batches, the TLB

/** What a record's edges need of its slot. */
interface RecordedSlot {
  readonly tableIndex: number;
  readonly asId: number;
}

/** mark_page_dirty_in_slot recorded a page of `slot` (a push or a bit). */
export function noteRecord(slot: RecordedSlot): void {
  if (slot.asId === SMM_AS_ID) hit(Edge.SMM_RECORD);
  else if (slot.tableIndex > 0) hit(Edge.MEMSLOT_SECOND);
}

/** The reset re-protects a batch of slot `slotEnc` (as encoded) whose mask's high half is `maskHi`. */
export function noteReprotectBatch(slotEnc: number, maskHi: number): void {
  if (maskHi !== 0) hit(Edge.COALESCE_MASK_HIGH);
  if (slotEnc >>> 16 === SMM_AS_ID) hit(Edge.SMM_REPROTECT);
}

const WRITABLE = SpteBits.WRITABLE;
const REQUESTS = VcpuLayout.words.REQUESTS;

/**
 * A guest store is about to land on `page` (SPTE word array `spte`) through the vCPU's cached
 * translation: stale if the SPTE is no longer writable, and a flush waits for this vCPU while
 * its TLB_FLUSH request (in `vcpuWords`) is still posted.
 */
export function noteGuestStore(spte: Int32Array, page: number, vcpuWords: Int32Array): void {
  if ((Atomics.load(spte, page) & WRITABLE) !== 0) return;
  if ((Atomics.load(vcpuWords, REQUESTS) & VcpuRequest.TLB_FLUSH) !== 0) hit(Edge.TLB_STALE_STORE_FLUSH_WAITS);
}
