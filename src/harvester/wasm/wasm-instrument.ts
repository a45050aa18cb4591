/**
 * Controlled runs see a C harvester's accesses: this rewrites the module's code so that every
 * load and store, 8 to 64 bits — plain (a C access, READ_ONCE, WRITE_ONCE) or atomic (what
 * smp_load_acquire and smp_store_release compile to) — calls the host (the hooks that
 * include/dirtyring.h keeps imported), with the memarg's offset as the last argument. The host makes an access to a ring
 * entry the mapping's plain accessor — a step point, and under a weak memory model a plain load
 * that may read an older store, as `cur->slot` may on arm64 — and does any other as it is.
 *
 * Only the code section changes (each body's instructions and sizes); function indices stay, so
 * calls, exports, tables and the name section keep their meaning. SIMD code is not rewritten.
 */
import { WasmModuleError, WasmReader as Reader } from './wasm-module.js';

const SECTION_IMPORT = 2;
const SECTION_CODE = 10;
const OP_I32_LOAD = 0x28;
const OP_I64_LOAD = 0x29;
const OP_I32_STORE = 0x36;
const OP_I64_STORE = 0x37;
const OP_ATOMIC = 0xfe;
// Atomic opcodes (after 0xFE) get keys above 0xFF in the hook map.
const ATOMIC = 0x100;
const OP_I32_ATOMIC_LOAD = ATOMIC | 0x10;
const OP_I64_ATOMIC_LOAD = ATOMIC | 0x11;
const OP_I32_ATOMIC_STORE = ATOMIC | 0x17;
const OP_I64_ATOMIC_STORE = ATOMIC | 0x18;
const OP_I32_CONST = 0x41;
const OP_CALL = 0x10;

/** The hooks, and the access each replaces: plain loads and stores, and the atomic loads and stores smp_load_acquire / smp_store_release compile to. */
const HOOK_OPS: readonly (readonly [string, number])[] = [
  ['plain_load32', OP_I32_LOAD],
  ['plain_load64', OP_I64_LOAD],
  ['plain_store32', OP_I32_STORE],
  ['plain_store64', OP_I64_STORE],
  ['acquire_load32', OP_I32_ATOMIC_LOAD],
  ['acquire_load64', OP_I64_ATOMIC_LOAD],
  ['release_store32', OP_I32_ATOMIC_STORE],
  ['release_store64', OP_I64_ATOMIC_STORE],
];
export const PLAIN_HOOKS = HOOK_OPS.map(([name]) => name);
/**
 * 8- and 16-bit loads and stores (and the i64 ones of 32 bits) call these with their opcode, when
 * the module imports them (modules built with an older header do not: their narrow accesses stay).
 */
const NARROW_LOAD = 'plain_load_narrow';
const NARROW_STORE = 'plain_store_narrow';
const OP_NARROW_LOAD_FIRST = 0x2c;
const OP_NARROW_LOAD_LAST = 0x35;
const OP_I64_NARROW_LOAD_FIRST = 0x30;
const OP_NARROW_STORE_FIRST = 0x3a;
const OP_NARROW_STORE_LAST = 0x3e;
const OP_I64_NARROW_STORE_FIRST = 0x3c;
const OP_I32_WRAP_I64 = 0xa7;
const OP_I64_EXTEND_I32_S = 0xac;
const OP_I64_EXTEND_I32_U = 0xad;
/** Keys of the narrow hooks in the hook map (no opcode has them). */
const KEY_NARROW_LOAD = -1;
const KEY_NARROW_STORE = -2;

/** The module with every 32- and 64-bit load and store routed through the hooks, or null when it does not import them. */
export function instrumentPlainAccesses(bytes: Uint8Array): Uint8Array<ArrayBuffer> | null {
  const sections = readSections(bytes);
  const imports = sections.find((s) => s.id === SECTION_IMPORT);
  const code = sections.find((s) => s.id === SECTION_CODE);
  if (imports === undefined || code === undefined) return null;
  const hooks = hookIndices(bytes.subarray(imports.start, imports.end));
  if (hooks === null) return null;
  const out: number[] = Array.from(bytes.subarray(0, 8));
  for (const s of sections) {
    const body = s.id === SECTION_CODE ? rewriteCode(bytes.subarray(s.start, s.end), hooks) : Array.from(bytes.subarray(s.start, s.end));
    out.push(s.id, ...uleb(body.length), ...body);
  }
  return new Uint8Array(out);
}

export interface Section {
  readonly id: number;
  readonly start: number;
  readonly end: number;
}

export function readSections(bytes: Uint8Array): Section[] {
  const r = new Reader(bytes, 8);
  const sections: Section[] = [];
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, start: r.at, end: r.at + size });
    r.at += size;
  }
  return sections;
}

/** Function indices of the three hooks among the imports (all three, or null). */
function hookIndices(section: Uint8Array): Map<number, number> | null {
  const r = new Reader(section, 0);
  const found = new Map<string, number>();
  let funcs = 0;
  for (let n = r.u32(); n > 0; n--) {
    const mod = r.name();
    const name = r.name();
    const kind = r.byte();
    if (kind === 0) {
      r.u32();
      if (mod === 'dirtyring' && ([...PLAIN_HOOKS, NARROW_LOAD, NARROW_STORE] as readonly string[]).includes(name)) found.set(name, funcs);
      funcs++;
    } else if (kind === 1) {
      r.byte();
      r.limits();
    } else if (kind === 2) r.limits();
    else {
      r.byte();
      r.byte();
    }
  }
  if (PLAIN_HOOKS.some((name) => !found.has(name))) return null;
  const hooks = new Map(HOOK_OPS.map(([name, op]) => [op, found.get(name)!]));
  const load = found.get(NARROW_LOAD);
  const store = found.get(NARROW_STORE);
  if (load !== undefined && store !== undefined) hooks.set(KEY_NARROW_LOAD, load).set(KEY_NARROW_STORE, store);
  return hooks;
}

function rewriteCode(section: Uint8Array, hooks: Map<number, number>): number[] {
  const r = new Reader(section, 0);
  const count = r.u32();
  const out = uleb(count);
  for (let f = 0; f < count; f++) {
    const size = r.u32();
    const end = r.at + size;
    const body = rewriteBody(section.subarray(r.at, end), hooks);
    out.push(...uleb(body.length), ...body);
    r.at = end;
  }
  return out;
}

function rewriteBody(body: Uint8Array, hooks: Map<number, number>): number[] {
  const r = new Reader(body, 0);
  for (let groups = r.u32(); groups > 0; groups--) {
    r.u32();
    r.byte();
  }
  const out = Array.from(body.subarray(0, r.at));
  while (r.at < body.length) {
    const start = r.at;
    let op = r.byte();
    if (op === OP_ATOMIC) {
      const key = ATOMIC | r.u32();
      if (hooks.has(key)) op = key;
      // Not one of ours: back to the sub-opcode, for skipImmediates.
      else r.at = start + 1;
    }
    const hook = hooks.get(op);
    if (hook !== undefined) {
      r.u32();
      const offset = r.u32();
      out.push(OP_I32_CONST, ...sleb(offset | 0), OP_CALL, ...uleb(hook));
      continue;
    }
    if (rewriteNarrow(r, op, hooks, out)) continue;
    skipImmediates(r, op);
    for (let i = start; i < r.at; i++) out.push(body[i]!);
  }
  return out;
}

/**
 * A narrow load or store as a call of its hook with (address, [value,] offset, opcode): an i64
 * store's value is wrapped to i32 first, an i64 load's i32 result extended as the opcode says.
 */
function rewriteNarrow(r: Reader, op: number, hooks: Map<number, number>, out: number[]): boolean {
  const load = op >= OP_NARROW_LOAD_FIRST && op <= OP_NARROW_LOAD_LAST;
  const store = op >= OP_NARROW_STORE_FIRST && op <= OP_NARROW_STORE_LAST;
  const hook = hooks.get(load ? KEY_NARROW_LOAD : KEY_NARROW_STORE);
  if ((!load && !store) || hook === undefined) return false;
  r.u32();
  const offset = r.u32();
  if (store && op >= OP_I64_NARROW_STORE_FIRST) out.push(OP_I32_WRAP_I64);
  out.push(OP_I32_CONST, ...sleb(offset | 0), OP_I32_CONST, ...sleb(op), OP_CALL, ...uleb(hook));
  // The i64 loads' signed forms have even opcodes (load8_s 0x30, load16_s 0x32, load32_s 0x34).
  if (load && op >= OP_I64_NARROW_LOAD_FIRST) out.push(op % 2 === 0 ? OP_I64_EXTEND_I32_S : OP_I64_EXTEND_I32_U);
  return true;
}

/** Step over one instruction's immediates (MVP, sign extension, bulk memory, atomics). */
function skipImmediates(r: Reader, op: number): void {
  if (op === 0x02 || op === 0x03 || op === 0x04) r.blockType();
  else if (op === 0x0c || op === 0x0d || op === 0x10 || op === 0xd2 || (op >= 0x20 && op <= 0x26)) r.u32();
  else if (op === 0x0e) {
    for (let n = r.u32(); n >= 0; n--) r.u32();
  } else if (op === 0x11) {
    r.u32();
    r.u32();
  } else if (op === 0x1c) {
    for (let n = r.u32(); n > 0; n--) r.byte();
  } else if (op >= 0x28 && op <= 0x3e) {
    r.u32();
    r.u32();
  } else if (op === 0x3f || op === 0x40 || op === 0xd0) r.byte();
  else if (op === 0x41 || op === 0x42) r.sleb();
  else if (op === 0x43) r.at += 4;
  else if (op === 0x44) r.at += 8;
  else if (op === 0xfc) skipFc(r, r.u32());
  else if (op === 0xfe) {
    if (r.u32() === 0x03) r.byte();
    else {
      r.u32();
      r.u32();
    }
  } else if (op === 0xfd) throw new WasmModuleError('SIMD code cannot be instrumented for controlled runs (build without -msimd128)');
}

function skipFc(r: Reader, sub: number): void {
  if (sub <= 7) return;
  if (sub === 8 || sub === 10 || sub === 12 || sub === 14) {
    r.u32();
    r.u32();
  } else r.u32();
}

export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    const b = v & 0x7f;
    v >>>= 7;
    out.push(v !== 0 ? b | 0x80 : b);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}
