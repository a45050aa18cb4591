/**
 * `struct kvm_dirty_gfn` as the emulator views it, and the typed views of one ring mapping
 * (the memory userspace gets from mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET).
 */
import { assert } from '../base/assert.js';
import { DIRTY_GFN_BYTES } from './constants.js';

// struct kvm_dirty_gfn, viewed as four u32 words (little-endian hosts only; checked at startup).

export const DirtyGfnWords = {
  /** flags u32 @0: accessed only with Atomics (release on publish, acquire on read). */
  FLAGS: 0,
  /** slot u32 @4: (as_id << 16) | id. */
  SLOT: 1,
  /** offset u64 @8, low half. */
  OFFSET_LO: 2,
  /** offset u64 @12, high half. */
  OFFSET_HI: 3,
} as const;
export const DIRTY_GFN_WORDS = DIRTY_GFN_BYTES / Uint32Array.BYTES_PER_ELEMENT;
assert(Object.keys(DirtyGfnWords).length === DIRTY_GFN_WORDS, 'struct kvm_dirty_gfn is four u32 words');

/** Typed views of one ring mapping. */
export interface RingViews {
  /** flags and slot and offset words, as Int32 (flags use Atomics). */
  readonly i32: Int32Array;
  /** The same memory as unsigned words for slot and offset. */
  readonly u32: Uint32Array;
  /** Entries in the ring (a power of two). */
  readonly entryCount: number;
}

/**
 * The views of a ring mapping: a whole SharedArrayBuffer, or the words of one placed inside a
 * larger shared memory (a WebAssembly harvester's linear memory, kernel/vm-core.ts).
 */
export function ringViews(ring: SharedArrayBuffer | Int32Array): RingViews {
  const i32 = ring instanceof Int32Array ? ring : new Int32Array(ring);
  assert(i32.byteLength % DIRTY_GFN_BYTES === 0, `a ring mapping of ${i32.byteLength} B is not whole ${DIRTY_GFN_BYTES}-byte entries`);
  return {
    i32,
    u32: new Uint32Array(i32.buffer, i32.byteOffset, i32.length),
    entryCount: i32.byteLength / DIRTY_GFN_BYTES,
  };
}
