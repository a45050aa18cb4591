/**
 * The layout helper every shared-memory structure is defined with. Each structure's layout
 * lives beside the module that owns it (e.g. kernel/vm-layout.ts, kernel/vcpu-layout.ts); other
 * modules index a block only through the names its layout gives.
 *
 * A block is an Int32 region (words touched with Atomics when another thread reads them)
 * followed by a Float64 region (counters and times written by one thread with plain stores
 * and read by others as statistics, or after an Atomics hand-off that orders them).
 */
import { assert } from '../base/assert.js';

/** The Float64 region, and any block placed after another, start on an 8-byte boundary. */
const FLOAT_ALIGN = Float64Array.BYTES_PER_ELEMENT;
const WORD_BYTES = Int32Array.BYTES_PER_ELEMENT;

export interface BlockLayout<W extends string, F extends string> {
  readonly name: string;
  readonly words: Readonly<Record<W, number>>;
  readonly wordCount: number;
  readonly floats: Readonly<Record<F, number>>;
  readonly floatCount: number;
  /** Byte offset of the Float64 region (8-byte aligned). */
  readonly floatByteOffset: number;
  readonly bytes: number;
}

export function defineBlock<const W extends string, const F extends string>(
  name: string,
  words: readonly W[],
  floats: readonly F[],
): BlockLayout<W, F> {
  const names = new Set<string>([...words, ...floats]);
  assert(names.size === words.length + floats.length, `layout ${name}: a field name is used twice`);
  const w = Object.fromEntries(words.map((k, i) => [k, i])) as Record<W, number>;
  const f = Object.fromEntries(floats.map((k, i) => [k, i])) as Record<F, number>;
  const floatByteOffset = Math.ceil((words.length * WORD_BYTES) / FLOAT_ALIGN) * FLOAT_ALIGN;
  const bytes = floatByteOffset + floats.length * FLOAT_ALIGN;
  // Blocks are laid out back to back (tables, per-vCPU arrays): each must keep the next aligned.
  assert(bytes % FLOAT_ALIGN === 0, `layout ${name}: ${bytes} B is not a multiple of ${FLOAT_ALIGN}`);
  return {
    name,
    words: w,
    wordCount: words.length,
    floats: f,
    floatCount: floats.length,
    floatByteOffset,
    bytes,
  };
}

/** Typed views over one block in a SharedArrayBuffer. */
export class SharedBlock<W extends string, F extends string> {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly buffer: SharedArrayBuffer;

  constructor(
    readonly layout: BlockLayout<W, F>,
    buffer?: SharedArrayBuffer,
    byteOffset = 0,
  ) {
    this.buffer = buffer ?? new SharedArrayBuffer(layout.bytes);
    if (this.buffer.byteLength < byteOffset + layout.bytes) {
      throw new RangeError(`${layout.name}: buffer of ${this.buffer.byteLength} B is too small`);
    }
    assert(byteOffset % FLOAT_ALIGN === 0, `${layout.name}: block at byte ${byteOffset}, not on an ${FLOAT_ALIGN}-byte boundary`);
    this.i32 = new Int32Array(this.buffer, byteOffset, layout.wordCount);
    this.f64 = new Float64Array(this.buffer, byteOffset + layout.floatByteOffset, layout.floatCount);
  }
}
