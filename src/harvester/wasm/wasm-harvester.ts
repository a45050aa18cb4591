/**
 * A C harvester compiled to WebAssembly as a harvester definition: the same contract as a
 * TypeScript one, so `run`, `stress` (free and controlled) and `migrate` drive it unchanged.
 *
 * Its memory: for --log ring the harness creates one shared WebAssembly.Memory per VM (ringSpace)
 * and the kernel places every vCPU's ring in it, above the module's initial memory (its data and
 * stack), so the C code reads `struct kvm_dirty_gfn` entries where mmap would have put them and
 * the vCPU threads write the same bytes. The Memory travels with the VM's buffers to whichever
 * thread runs the harvester, and create() instantiates the module there. Bitmap logs need no
 * rings: create() makes a memory of the module's own size.
 */
import { ConfigError } from '../../base/config-error.js';
import { type Collection, type HarvesterDefinition, type HarvesterInstance, type HarvesterKvm, type HarvesterLog, defineHarvester } from '../contract.js';
import { WASM_EXPORT_COLLECT, WASM_EXPORT_INIT, WASM_EXPORT_LOG, WASM_IMPORT_MODULE, WASM_LOGS, WASM_MEMORY_IMPORT, WASM_PAGE_BYTES } from './wasm-abi.js';
import { stepHook } from '../../kernel/step-hook.js';
import { WasmHost } from './wasm-host.js';
import { HarvesterSharedWords } from '../../harvester/shared-words.js';
import { instrumentPlainAccesses } from './wasm-instrument.js';
import { type CheckedWasmModule, type MemoryLimits, WasmModuleError, checkWasmModule } from './wasm-module.js';

type CollectFn = (final: number) => number;

/** The harvester a checked module defines; `name` is shown in reports (the file's base name). */
export function wasmHarvester(name: string, bytes: Uint8Array<ArrayBuffer>): HarvesterDefinition {
  const checked = checkWasmModule(bytes);
  const log = moduleLog(checked);
  return defineHarvester({
    name,
    log,
    ringSpace: (vcpus, ringBytes) => ringSpaceFor(name, checked.memory, vcpus, ringBytes),
    create: (kvm) => instantiate(name, checked, kvm),
  });
}

/** The module's log mode: dirtyring_log() run on a throwaway instance (it must not touch memory). */
function moduleLog(checked: CheckedWasmModule): HarvesterLog {
  const memory = newMemory(checked.memory, checked.memory.minPages);
  const stub = new WasmHost(noVm(), memory, null).imports();
  let log: unknown;
  try {
    const instance = new WebAssembly.Instance(checked.module, { [WASM_MEMORY_IMPORT.module]: { [WASM_MEMORY_IMPORT.name]: memory }, [WASM_IMPORT_MODULE]: stub });
    log = WASM_LOGS[(instance.exports[WASM_EXPORT_LOG] as () => number)()];
  } catch (e) {
    throw new WasmModuleError(`trapped in ${WASM_EXPORT_LOG}(): ${e instanceof Error ? e.message : String(e)}`);
  }
  if (log === undefined) throw new WasmModuleError(`${WASM_EXPORT_LOG}() must return 0 (ring), 1 (bitmap) or 2 (clear)`);
  return log as HarvesterLog;
}

/** A fresh shared memory for one VM: the module's pages, then the rings (ENOMEM past its maximum). */
function ringSpaceFor(name: string, limits: MemoryLimits, vcpus: number, ringBytes: number): { memory: WebAssembly.Memory; byteOffset: number } {
  const ringPages = Math.ceil((vcpus * ringBytes) / WASM_PAGE_BYTES);
  const pages = limits.minPages + ringPages;
  if (pages > limits.maxPages) {
    throw new ConfigError(
      '--harvester',
      name,
      'ENOMEM',
      `${vcpus} rings of ${ringBytes} B need ${pages} pages of linear memory; the module allows ${limits.maxPages} (link with -Wl,--max-memory=${pages * WASM_PAGE_BYTES} or more)`,
    );
  }
  return { memory: newMemory(limits, pages), byteOffset: limits.minPages * WASM_PAGE_BYTES };
}

function newMemory(limits: MemoryLimits, pages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum: limits.maxPages, shared: true });
}

/**
 * The module to run: in a controlled run the instrumented one (every load and store a host call:
 * step points, the memory model; wasm-instrument.ts), compiled at the first need; elsewhere the
 * module as built, its RESET marks counted in the rings at each reset (WasmHost).
 */
function moduleFor(checked: CheckedWasmModule): { module: WebAssembly.Module; native: boolean } {
  if (!stepHook.active) return { module: checked.module, native: true };
  if (checked.instrumented === undefined) checked.instrumented = compiled(instrumentPlainAccesses(checked.bytes));
  return checked.instrumented === null ? { module: checked.module, native: true } : { module: checked.instrumented, native: false };
}

function compiled(bytes: Uint8Array<ArrayBuffer> | null): WebAssembly.Module | null {
  return bytes === null ? null : new WebAssembly.Module(bytes);
}

function instantiate(name: string, checked: CheckedWasmModule, kvm: HarvesterKvm): HarvesterInstance {
  const memory = kvm.ringMemory ?? newMemory(checked.memory, checked.memory.minPages);
  const placement = kvm.ringMemory === null || kvm.log !== 'ring' ? null : { byteOffset: kvm.ring(0).byteOffset, ringBytes: kvm.ring(0).entryCount * 16, vcpus: kvm.vcpuCount };
  const run = moduleFor(checked);
  const host = new WasmHost(kvm, memory, placement, run.native);
  const instance = new WebAssembly.Instance(run.module, { [WASM_MEMORY_IMPORT.module]: { [WASM_MEMORY_IMPORT.name]: memory }, [WASM_IMPORT_MODULE]: host.imports() });
  const init = instance.exports[WASM_EXPORT_INIT];
  if (typeof init === 'function') {
    const rc = (init as () => number)();
    if (rc !== 0) throw new Error(`${name}: ${WASM_EXPORT_INIT}() returned ${rc}`);
  }
  const collect = instance.exports[WASM_EXPORT_COLLECT] as CollectFn;
  return {
    collect(c: Collection) {
      host.begin(c);
      const rc = collect(c.final ? 1 : 0);
      if (rc !== 0) throw new Error(`${name}: ${WASM_EXPORT_COLLECT}(${c.final ? 1 : 0}) returned ${rc}`);
    },
  };
}

/** A VM with nothing in it, for dirtyring_log() at load time. */
function noVm(): HarvesterKvm {
  const none = (): never => {
    throw new Error('dirtyring_log() must not call into the VM');
  };
  return { log: 'ring', vcpuCount: 0, memslots: [], ringMemory: null, shared: new HarvesterSharedWords(), ring: none, resetDirtyRings: none, getDirtyLog: none, clearDirtyLog: none, thread: 0, threads: 1, barrier: none, kick: none, report: none };
}
