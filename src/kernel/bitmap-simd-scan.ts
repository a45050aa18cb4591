/**
 * The dirty bitmap's scan for non-zero words, in WebAssembly SIMD.
 *
 * The legacy GET and the CLEAR spend most of a call on a large, mostly empty slot looking for
 * the few words with a bit set: 32 KiB per GiB of guest. JavaScript reads at most 64 bits per
 * load, each with its own bounds check; a 128-bit SIMD load over the same shared memory tests
 * a 64-byte block (512 pages) in four loads and one branch, about three times faster. So a
 * large slot's bitmap is allocated as a shared WebAssembly.Memory (its `buffer` is the
 * SharedArrayBuffer every other view uses) and each thread that has the Memory instantiates
 * this module over it. The scan is a plain read, as the kernel's: a bit set just after it looks
 * stays in the live word for the next call; only the exchange or AND that follows is atomic.
 *
 * Where WebAssembly, SIMD or shared memories are missing, or for small slots, there is no
 * Memory and callers scan in JavaScript (dirty-bitmap.ts); the results are the same.
 */

/** Bytes the scan tests at once: `scan` returns offsets that are multiples of this. */
export const SCAN_BLOCK_BYTES = 64;
/** A bitmap allocation smaller than this stays a plain SharedArrayBuffer (see allocateBitmap). */
const MIN_MEMORY_BYTES = 64 * 1024;
const WASM_PAGE_BYTES = 64 * 1024;
/** wasm32's largest memory, in pages (4 GiB). */
const MAX_WASM_PAGES = 65536;

/**
 * `scan(fromByte, toByte)`: the offset of the first 64-byte block in [fromByte, toByte) with a
 * non-zero byte, or toByte when there is none. Both offsets are multiples of 64 and
 * fromByte ≤ toByte.
 */
export type BitmapScan = (fromByte: number, toByte: number) => number;

/** A bitmap allocation: the buffer every view uses, and the Memory behind it when it has one. */
export interface BitmapAllocation {
  readonly buffer: SharedArrayBuffer;
  readonly memory: WebAssembly.Memory | null;
}

/**
 * `bytes` of zeroed shared memory for a slot's bitmaps. From MIN_MEMORY_BYTES up, a shared
 * WebAssembly.Memory rounded up to whole 64 KiB pages (so at most a third more than asked),
 * when this engine can scan it; otherwise a SharedArrayBuffer of exactly `bytes`.
 */
export function allocateBitmap(bytes: number): BitmapAllocation {
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  if (bytes >= MIN_MEMORY_BYTES && pages <= MAX_WASM_PAGES && scanModule() !== null) {
    try {
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const buffer: unknown = memory.buffer;
      if (buffer instanceof SharedArrayBuffer) return { buffer, memory };
    } catch (e) {
      // Out of memory for a Memory this large: a plain buffer, which fails the same way if it
      // must (the caller turns that RangeError into ENOMEM).
      if (!(e instanceof RangeError)) throw e;
    }
  }
  return { buffer: new SharedArrayBuffer(bytes), memory: null };
}

/** Bytes of the buffer `allocateBitmap(bytes)` gives when it is a Memory's. */
export function memoryBitmapBytes(bytes: number): number {
  return Math.ceil(bytes / WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
}

const scanners = new WeakMap<WebAssembly.Memory, BitmapScan>();

/** This thread's scan over `memory` (one instance per Memory), or null without one. */
export function bitmapScanner(memory: WebAssembly.Memory | null | undefined): BitmapScan | null {
  if (!memory) return null;
  let scan = scanners.get(memory);
  if (scan === undefined) {
    const module = scanModule();
    if (module === null) return null;
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    scan = instance.exports.scan as BitmapScan;
    scanners.set(memory, scan);
  }
  return scan;
}

/** The compiled module, or null where this engine cannot run it; compiled once per thread. */
let compiled: WebAssembly.Module | null | undefined;

function scanModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = null;
    const bytes = scanModuleBytes();
    if (typeof WebAssembly === 'object' && typeof SharedArrayBuffer === 'function' && WebAssembly.validate(bytes)) {
      compiled = new WebAssembly.Module(bytes);
    }
  }
  return compiled;
}

// --- the module, encoded by hand (about 120 bytes; small enough to compile synchronously in a
// browser's main thread) ---

const I32 = 0x7f;
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  simd: 0xfd,
} as const;
const simd = { v128Load: 0x00, v128Or: 0x50, v128AnyTrue: 0x53 } as const;
/** Block type of a block or loop that yields nothing. */
const VOID = 0x40;
/** v128.load's alignment hint, log2 of 16 bytes. */
const ALIGN_16 = 4;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/**
 * (func (param $at i32) (param $end i32) (result i32)
 *   block $done
 *     loop $next
 *       (br_if $done (i32.ge_u $at $end))
 *       (br_if $done (v128.any_true (or of the four 16-byte loads at $at)))
 *       (local.set $at (i32.add $at 64))
 *       br $next
 *   $at)
 */
function scanBody(): number[] {
  const AT = 0;
  const END = 1;
  const load = (offset: number) => [op.localGet, AT, op.simd, simd.v128Load, ALIGN_16, ...uleb(offset)];
  const or = [op.simd, simd.v128Or];
  return [
    0, // no locals besides the parameters
    op.block, VOID,
    op.loop, VOID,
    op.localGet, AT, op.localGet, END, op.i32GeU, op.brIf, 1,
    ...load(0), ...load(16), ...or, ...load(32), ...or, ...load(48), ...or,
    op.simd, simd.v128AnyTrue, op.brIf, 1,
    // i32.const takes a signed LEB128: 64 is 0xc0 0x00 (a lone 0x40 would be -64).
    op.localGet, AT, op.i32Const, 0xc0, 0x00, op.i32Add, op.localSet, AT,
    op.br, 0,
    op.end,
    op.end,
    op.localGet, AT,
    op.end,
  ];
}

function scanModuleBytes(): Uint8Array<ArrayBuffer> {
  const body = scanBody();
  const SHARED_WITH_MAX = 0x03;
  const KIND_FUNC = 0x00;
  const KIND_MEMORY = 0x02;
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // one type: (i32, i32) -> i32
    ...section(2, [1, ...name('env'), ...name('memory'), KIND_MEMORY, SHARED_WITH_MAX, 0, ...uleb(MAX_WASM_PAGES)]),
    ...section(3, [1, 0]), // one function, of type 0
    ...section(7, [1, ...name('scan'), KIND_FUNC, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}
