/**
 * What a C harvester's threads need of its module: a stack each. Every thread instantiates the
 * same module over the same shared memory, and WebAssembly globals belong to the instance, so
 * each thread can have its own `__stack_pointer` — if the harness can set it. wasm-ld keeps it
 * internal (exporting a mutable global needs a feature flag at every compile), so the harness
 * adds the export itself: the module's first defined global that is a mutable i32 initialised
 * by a constant, which is where wasm-ld puts the stack pointer. Only the export section changes.
 */
import { WASM_STACK_POINTER_EXPORT } from './wasm-abi.js';
import { readSections, uleb } from './wasm-instrument.js';
import { WasmReader } from './wasm-module.js';

const SECTION_IMPORT = 2;
const SECTION_GLOBAL = 6;
const SECTION_EXPORT = 7;
const KIND_GLOBAL = 3;
const TYPE_I32 = 0x7f;
const OP_I32_CONST = 0x41;
const OP_END = 0x0b;

/** The stack pointer global: its index, and its initial value (the top of the linker's stack). */
export interface StackPointer {
  readonly index: number;
  readonly top: number;
}

/** The module's stack pointer, or null when it defines none (a module with no stack use). */
export function findStackPointer(bytes: Uint8Array): StackPointer | null {
  const sections = readSections(bytes);
  const imports = sections.find((s) => s.id === SECTION_IMPORT);
  const globals = sections.find((s) => s.id === SECTION_GLOBAL);
  if (globals === undefined) return null;
  let imported = 0;
  if (imports !== undefined) {
    const r = new WasmReader(bytes.subarray(imports.start, imports.end), 0);
    for (let n = r.u32(); n > 0; n--) {
      r.name();
      r.name();
      const kind = r.byte();
      if (kind === KIND_GLOBAL) imported++;
      if (kind === 2) r.limits();
      else r.skipImportDesc(kind);
    }
  }
  const r = new WasmReader(bytes.subarray(globals.start, globals.end), 0);
  const count = r.u32();
  for (let g = 0; g < count; g++) {
    const type = r.byte();
    const mutable = r.byte();
    const op = r.byte();
    if (type === TYPE_I32 && mutable === 1 && op === OP_I32_CONST) {
      const top = readSleb32(r);
      if (r.byte() === OP_END) return { index: imported + g, top };
      return null;
    }
    return null;
  }
  return null;
}

/** The module with global `index` exported as WASM_STACK_POINTER_EXPORT. */
export function exportStackPointer(bytes: Uint8Array, index: number): Uint8Array<ArrayBuffer> {
  const name = new TextEncoder().encode(WASM_STACK_POINTER_EXPORT);
  const entry = [...uleb(name.length), ...name, KIND_GLOBAL, ...uleb(index)];
  const out: number[] = Array.from(bytes.subarray(0, 8));
  const sections = readSections(bytes);
  const hasExports = sections.some((s) => s.id === SECTION_EXPORT);
  for (const s of sections) {
    let body = Array.from(bytes.subarray(s.start, s.end));
    if (s.id === SECTION_EXPORT) {
      const r = new WasmReader(bytes.subarray(s.start, s.end), 0);
      const count = r.u32();
      body = [...uleb(count + 1), ...body.slice(r.at), ...entry];
    }
    out.push(s.id, ...uleb(body.length), ...body);
    // An export section goes after the global section (section order is fixed).
    if (!hasExports && s.id === SECTION_GLOBAL) {
      const own = [...uleb(1), ...entry];
      out.push(SECTION_EXPORT, ...uleb(own.length), ...own);
    }
  }
  return new Uint8Array(out);
}

function readSleb32(r: WasmReader): number {
  let result = 0;
  let shift = 0;
  let b: number;
  do {
    b = r.byte();
    result |= (b & 0x7f) << shift;
    shift += 7;
  } while ((b & 0x80) !== 0 && shift < 35);
  if (shift < 32 && (b & 0x40) !== 0) result |= -1 << shift;
  return result;
}
