/**
 * Checking a harvester's WebAssembly module before any run: it compiles, imports a shared
 * `env.memory` with a maximum, imports nothing the harness does not provide, and exports
 * `dirtyring_log` and `dirtyring_collect`. The memory's limits are read from the import section
 * itself (the JS API does not report them): the rings are placed above the module's initial
 * memory, which holds its data and stack.
 */
import { WASM_EXPORT_COLLECT, WASM_EXPORT_LOG, WASM_IMPORTS, WASM_IMPORT_MODULE, WASM_MEMORY_IMPORT } from './wasm-abi.js';

/** A module that cannot be a harvester: the reason, one line. */
export class WasmModuleError extends Error {
  override readonly name = 'WasmModuleError';
}

export interface MemoryLimits {
  /** Initial pages (64 KiB each): what the module's data and stack need. */
  readonly minPages: number;
  readonly maxPages: number;
}

export interface CheckedWasmModule {
  readonly module: WebAssembly.Module;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly memory: MemoryLimits;
  /** The module with every access instrumented (controlled runs), once compiled; null if it cannot be. */
  instrumented?: WebAssembly.Module | null;
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const SECTION_IMPORT = 2;
const KIND_MEMORY = 2;
const LIMITS_HAS_MAX = 1;
const LIMITS_SHARED = 2;

export function checkWasmModule(bytes: Uint8Array<ArrayBuffer>): CheckedWasmModule {
  if (bytes.length < 8 || WASM_MAGIC.some((b, i) => bytes[i] !== b)) throw new WasmModuleError('not a WebAssembly module (no \\0asm header)');
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (e) {
    throw new WasmModuleError(`not a valid WebAssembly module: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const imp of WebAssembly.Module.imports(module)) {
    const isMemory = imp.module === WASM_MEMORY_IMPORT.module && imp.name === WASM_MEMORY_IMPORT.name && imp.kind === 'memory';
    const isFunction = imp.module === WASM_IMPORT_MODULE && imp.kind === 'function' && (WASM_IMPORTS as readonly string[]).includes(imp.name);
    if (!isMemory && !isFunction) throw new WasmModuleError(`imports ${imp.kind} ${imp.module}.${imp.name}, which dirtyring does not provide (see include/dirtyring.h)`);
  }
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  for (const name of [WASM_EXPORT_LOG, WASM_EXPORT_COLLECT]) {
    if (exports.get(name) !== 'function') throw new WasmModuleError(`exports no function ${name} (define the harvester with DIRTYRING_HARVESTER in include/dirtyring.h)`);
  }
  const memory = memoryImportLimits(bytes);
  if (memory === null) throw new WasmModuleError('does not import its memory as env.memory (link with -Wl,--import-memory,--shared-memory,--max-memory=N)');
  return { module, bytes, memory };
}

/** The limits of the env.memory import, or null; a memory that is not shared is refused. */
function memoryImportLimits(bytes: Uint8Array): MemoryLimits | null {
  const r = new WasmReader(bytes, 8);
  while (!r.done()) {
    const id = r.byte();
    const size = r.u32();
    const end = r.at + size;
    if (id !== SECTION_IMPORT) {
      r.at = end;
      continue;
    }
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const mod = r.name();
      const name = r.name();
      const kind = r.byte();
      if (kind !== KIND_MEMORY) {
        r.skipImportDesc(kind);
        continue;
      }
      const flags = r.byte();
      const minPages = r.u32();
      const maxPages = (flags & LIMITS_HAS_MAX) !== 0 ? r.u32() : -1;
      if (mod !== WASM_MEMORY_IMPORT.module || name !== WASM_MEMORY_IMPORT.name) continue;
      if ((flags & LIMITS_SHARED) === 0 || maxPages < 0) throw new WasmModuleError('imports env.memory unshared: the rings are shared with the vCPU threads (link with -Wl,--shared-memory,--max-memory=N and compile with -matomics)');
      return { minPages, maxPages };
    }
    return null;
  }
  return null;
}

/** Just enough of the binary format to walk the import section and, for instrumentation, code bodies. */
export class WasmReader {
  constructor(
    private readonly bytes: Uint8Array,
    public at: number,
  ) {}

  done(): boolean {
    return this.at >= this.bytes.length;
  }

  byte(): number {
    if (this.at >= this.bytes.length) throw new WasmModuleError('truncated WebAssembly module');
    return this.bytes[this.at++]!;
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new WasmModuleError('bad LEB128 in WebAssembly module');
  }

  /** A signed LEB128 of any width, skipped. */
  sleb(): void {
    while ((this.byte() & 0x80) !== 0);
  }

  blockType(): void {
    const b = this.bytes[this.at]!;
    if (b === 0x40 || (b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f) this.at++;
    else this.sleb();
  }

  limits(): void {
    const flags = this.byte();
    this.u32();
    if ((flags & 1) !== 0) this.u32();
  }

  name(): string {
    const n = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }

  /** A function (type index), table (reftype, limits) or global (valtype, mut) import. */
  skipImportDesc(kind: number): void {
    if (kind === 0) this.u32();
    else if (kind === 1) {
      this.byte();
      const flags = this.byte();
      this.u32();
      if ((flags & LIMITS_HAS_MAX) !== 0) this.u32();
    } else if (kind === 3) {
      this.byte();
      this.byte();
    } else throw new WasmModuleError(`unknown import kind ${kind}`);
  }
}
