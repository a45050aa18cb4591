/**
 * The argument checks of the emulated kernel's public entry points. A C caller can only pass
 * the kernel integers and pointers; a JavaScript caller can pass anything, so every entry point
 * first checks that each argument is a value the ABI field could hold, and refuses the others
 * with the errno the kernel gives for a bad value of that field: EINVAL for a number it cannot
 * use (an out-of-range slot, unknown flag bits), EFAULT for a buffer or struct it cannot read or
 * write. Every check runs before the ioctl changes anything.
 */
import { PAGE_SIZE, U32_RANGE } from '../abi/constants.js';
import { type ErrnoName, KvmError } from '../abi/errno.js';

const U64_MAX = (1n << 64n) - 1n;
const U16_RANGE = 0x10000;
const WORD_BYTES = Uint32Array.BYTES_PER_ELEMENT;

/** A value for an error message: never throws (a Symbol cannot go into a template literal). */
export function showArg(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : `a ${value.constructor?.name ?? 'object'}`;
}

/** A u32 ABI field: an integer in [0, 2^32). */
export function u32Arg(value: unknown, param: string, errno: ErrnoName = 'EINVAL'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= U32_RANGE) {
    throw new KvmError(errno, `${param} ${showArg(value)} is not a u32`, param);
  }
  return value;
}

/** A u64 ABI field as a number (only values up to 2^53 are meaningful to the emulator). */
export function u64NumberArg(value: unknown, param: string, errno: ErrnoName = 'EINVAL'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new KvmError(errno, `${param} ${showArg(value)} is not a u64 the emulator can hold`, param);
  }
  return value;
}

/** A u64 ABI field given as a number or a bigint. */
export function u64Arg(value: unknown, param: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) throw new KvmError('EINVAL', `${param} ${value}n is not a u64`, param);
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new KvmError('EINVAL', `${param} ${showArg(value)} is not a u64`, param);
  }
  return BigInt(value);
}

/** A u32 of flag bits with no bit outside `valid` (unknown bits: EINVAL, as every KVM ioctl). */
export function flagsArg(value: unknown, valid: number, param = 'flags'): number {
  const flags = u32Arg(value, param);
  if ((flags & ~valid) !== 0) throw new KvmError('EINVAL', `unknown ${param} bits 0x${((flags & ~valid) >>> 0).toString(16)}`, param);
  return flags;
}

/** A `slot` field: a u32, as_id in the high 16 bits and the slot id in the low 16. */
export function slotArg(value: unknown, param = 'slot'): number {
  return u32Arg(value, param);
}

/** One half of a slot (as_id or id) given on its own: a u16, which encodeSlot cannot overflow. */
export function u16Arg(value: unknown, param: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= U16_RANGE) {
    throw new KvmError('EINVAL', `${param} ${showArg(value)} is not a u16`, param);
  }
  return value;
}

/** A count of guest pages (a convenience parameter): a positive integer whose bytes are exact. */
export function pageCountArg(value: unknown, param = 'pageCount'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || !Number.isSafeInteger(value * PAGE_SIZE)) {
    throw new KvmError('EINVAL', `${param} ${showArg(value)} is not a page count`, param);
  }
  return value;
}

export function booleanArg(value: unknown, param: string): boolean {
  if (typeof value !== 'boolean') throw new KvmError('EINVAL', `${param} ${showArg(value)} is not a boolean`, param);
  return value;
}

export function optionalBooleanArg(value: unknown, param: string): boolean | undefined {
  return value === undefined ? undefined : booleanArg(value, param);
}

/** A struct the ioctl copies from userspace: anything but an object is a pointer it cannot read. */
export function structArg<T extends object>(value: T | null | undefined, param: string): T {
  if (value === null || typeof value !== 'object') {
    throw new KvmError('EFAULT', `${param} ${showArg(value)} is not a struct the kernel can read`, param);
  }
  return value;
}

/** An emulator-only callback parameter: undefined or a function. */
export function optionalFunctionArg<T extends (...args: never[]) => unknown>(value: T | undefined, param: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new KvmError('EINVAL', `${param} ${showArg(value)} is not a function`, param);
  }
  return value;
}

/**
 * A userspace bitmap (dirty_bitmap of GET or CLEAR). It is bytes in KVM's ABI, little-endian
 * bit order: a Uint8Array, or a Uint32Array over the same bytes (the emulator's own collectors
 * keep words), measured in bytes. `null` is the NULL pointer, left for the ioctl to fault on at
 * the point the kernel does.
 *
 * Any other value, and a buffer shorter than the `bytes` the ioctl copies, is EFAULT: the
 * kernel's copy_to_user / copy_from_user fails on memory past the end of a user buffer. The
 * kernel only notices that during the copy — legacy GET has already consumed the bits by then
 * — but here the buffer's bounds are known before the ioctl starts, so the check comes first
 * and nothing is lost: an EFAULT from a buffer that is too short or of the wrong type leaves
 * the dirty log as it was.
 *
 * Returns the bitmap as the u32 words the kernel's bitmap code works on: a Uint32Array as given
 * (no allocation: the collectors call this for every chunk), a Uint8Array as a view of its
 * bytes, or, when its offset is not 4-aligned, a copy (`copyOut` writes it back after a GET).
 */
export function userBitmapArg(value: unknown, bytes: number, param = 'dirty_bitmap'): Uint32Array | null {
  if (value === null) return null;
  if (!(value instanceof Uint8Array) && !(value instanceof Uint32Array)) {
    throw new KvmError('EFAULT', `${param} ${showArg(value)} is not a byte buffer (Uint8Array)`, param);
  }
  if (value.byteLength < bytes) {
    throw new KvmError('EFAULT', `${param} holds ${value.byteLength} bytes, the slot's bitmap needs ${bytes} (ALIGN(npages, 64) / 8)`, param);
  }
  if (value instanceof Uint32Array) return value;
  if (value.byteOffset % WORD_BYTES === 0) return wordsOver(value, bytes / WORD_BYTES);
  const words = new Uint32Array(bytes / WORD_BYTES);
  new Uint8Array(words.buffer).set(value.subarray(0, bytes));
  return words;
}

/** The last user byte buffer userBitmapArg viewed as words, and that view: a harvester passes the same buffer every time. */
let lastBytes: Uint8Array | null = null;
let lastWords: Uint32Array | null = null;

/** `count` u32 words over the 4-aligned bytes of `user`; the previous call's view when it is the same. */
function wordsOver(user: Uint8Array, count: number): Uint32Array {
  const w = lastWords;
  if (user === lastBytes && w !== null && w.length === count && w.buffer === user.buffer && w.byteOffset === user.byteOffset) return w;
  lastBytes = user;
  lastWords = new Uint32Array(user.buffer, user.byteOffset, count);
  return lastWords;
}

/** copy_to_user of a GET's words when userBitmapArg had to copy the user's bytes. */
export function copyOut(user: Uint8Array | Uint32Array, words: Uint32Array, bytes: number): void {
  if (words.buffer !== user.buffer) (user as Uint8Array).set(new Uint8Array(words.buffer, 0, bytes));
}

/**
 * harvestRing's arguments, checked once per call (never per entry): a cursor that is not a u32
 * index would read from entry 0 and a NaN `max` would collect nothing, both without a word.
 * `resetFlags` may be any u32 — the kernel accepts every value with the RESET bit, and stress
 * runs write others on purpose.
 */
export function checkHarvestArgs(cursor: unknown, max: unknown, sink: unknown, resetFlags: unknown): void {
  const fetch = (cursor as { fetchIndex?: unknown } | null)?.fetchIndex;
  if (typeof fetch !== 'number' || !Number.isInteger(fetch) || fetch < 0 || fetch > U32_RANGE - 1) {
    throw new KvmError('EINVAL', `cursor.fetchIndex ${showArg(fetch)} is not a u32 ring index`, 'cursor');
  }
  if (typeof max !== 'number' || Number.isNaN(max) || max < 0 || (!Number.isInteger(max) && max !== Number.POSITIVE_INFINITY)) {
    throw new KvmError('EINVAL', `max ${showArg(max)} is not a count of entries`, 'max');
  }
  if (typeof sink !== 'function') throw new KvmError('EINVAL', 'sink is not a function', 'sink');
  if (typeof resetFlags !== 'number' || !Number.isInteger(resetFlags) || resetFlags < 0 || resetFlags > U32_RANGE - 1) {
    throw new KvmError('EINVAL', `resetFlags ${showArg(resetFlags)} is not a u32`, 'resetFlags');
  }
}
