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
 *
 * Threads (DIRTYRING_THREADS): the definition's `threads`, so the TypeScript machinery runs it —
 * each thread calls create() and instantiates the module over the one memory, on its own stack
 * (reserved between the module's pages and the rings); thread 0 runs dirtyring_init().
 */
import { ConfigError } from '../../base/config-error.js';
import { type Collection, DECLARES_THREADS, type HarvesterDefinition, type HarvesterInstance, type HarvesterKvm, type HarvesterLog, MAX_HARVESTER_THREADS, defineHarvester } from '../contract.js';
import {
  WASM_EXPORT_COLLECT,
  WASM_EXPORT_INIT,
  WASM_EXPORT_LOG,
  WASM_EXPORT_THREADS,
  WASM_IMPORT_MODULE,
  WASM_LOGS,
  WASM_MEMORY_IMPORT,
  WASM_PAGE_BYTES,
  WASM_STACK_POINTER_EXPORT,
  WASM_THREAD_STACK_BYTES,
} from './wasm-abi.js';
import { stepHook } from '../../kernel/step-hook.js';
import { WasmHost } from './wasm-host.js';
import { HARVESTER_SHARED_WORDS, HarvesterSharedWords, harvesterWordLocations } from '../../harvester/shared-words.js';
import { instrumentPlainAccesses } from './wasm-instrument.js';
import { type CheckedWasmModule, type MemoryLimits, WasmModuleError, checkWasmModule } from './wasm-module.js';
import { WasmStatics } from './wasm-statics.js';
import { exportStackPointer, findStackPointer, type StackPointer } from './wasm-threads.js';

type CollectFn = (final: number) => number;

/** A module with DIRTYRING_THREADS: its stack pointer, exported so that each thread gets a stack. */
interface ThreadedModule extends CheckedWasmModule {
  readonly stackPointer: StackPointer | null;
  /** Stack bytes reserved above the module's pages for threads 1.. (0: it declares no threads). */
  readonly stackBytes: number;
}

/** Set in a free run's harvester thread: its step hook only records where the thread is. */
let hookObservesOnly = false;

/** This thread's step hook only observes (a free run's harvester thread): modules run as built. */
export function runWasmAsBuilt(): void {
  hookObservesOnly = true;
}

/** The harvester a checked module defines; `name` is shown in reports (the file's base name). */
export function wasmHarvester(name: string, bytes: Uint8Array<ArrayBuffer>): HarvesterDefinition {
  const checked = threadedModule(checkWasmModule(bytes));
  const { log, threads } = moduleLog(checked);
  const def: HarvesterDefinition = {
    name,
    log,
    ...(threads !== null && { threads }),
    ringSpace: (vcpus, ringBytes) => ringSpaceFor(name, checked, vcpus, ringBytes),
    create: (kvm) => instantiate(name, checked, kvm),
  };
  (def as unknown as Record<symbol, unknown>)[DECLARES_THREADS] = threads !== null;
  return defineHarvester(def);
}

/** The module, with its stack pointer exported when it has one (threads set it: wasm-threads.ts). */
function threadedModule(checked: CheckedWasmModule): ThreadedModule {
  const threaded = WebAssembly.Module.exports(checked.module).some((e) => e.name === WASM_EXPORT_THREADS && e.kind === 'function');
  const stackPointer = findStackPointer(checked.bytes);
  const stackBytes = threaded ? (MAX_HARVESTER_THREADS - 1) * WASM_THREAD_STACK_BYTES : 0;
  if (stackPointer === null) return { ...checked, stackPointer, stackBytes };
  const bytes = exportStackPointer(checked.bytes, stackPointer.index);
  return { ...checked, bytes, module: new WebAssembly.Module(bytes), stackPointer, stackBytes };
}

/** The module's log mode and threads: dirtyring_log() and dirtyring_threads() run on a throwaway instance (they must not touch memory). */
function moduleLog(checked: CheckedWasmModule): { log: HarvesterLog; threads: number | null } {
  const memory = newMemory(checked.memory, checked.memory.minPages);
  const stub = new WasmHost(noVm(), memory, null).imports();
  let log: unknown;
  let threads: number | null = null;
  let fn = WASM_EXPORT_LOG;
  try {
    const instance = new WebAssembly.Instance(checked.module, { [WASM_MEMORY_IMPORT.module]: { [WASM_MEMORY_IMPORT.name]: memory }, [WASM_IMPORT_MODULE]: stub });
    log = WASM_LOGS[(instance.exports[WASM_EXPORT_LOG] as () => number)()];
    const declared = instance.exports[WASM_EXPORT_THREADS];
    fn = WASM_EXPORT_THREADS;
    if (typeof declared === 'function') threads = (declared as () => number)();
  } catch (e) {
    throw new WasmModuleError(`trapped in ${fn}(): ${e instanceof Error ? e.message : String(e)}`);
  }
  if (log === undefined) throw new WasmModuleError(`${WASM_EXPORT_LOG}() must return 0 (ring), 1 (bitmap) or 2 (clear)`);
  if (threads !== null && (threads < 1 || threads > MAX_HARVESTER_THREADS)) {
    throw new WasmModuleError(`${WASM_EXPORT_THREADS}() returned ${threads}: the thread count (DIRTYRING_THREADS) must be in 1..${MAX_HARVESTER_THREADS}`);
  }
  if (threads !== null && (checked as ThreadedModule).stackPointer === null) throw new WasmModuleError(`declares threads but has no stack pointer global to give each its stack (link with wasm-ld, as build-harvester does)`);
  return { log: log as HarvesterLog, threads };
}

/**
 * A fresh shared memory for one VM: the module's pages, the stacks of threads 1.. when it
 * declares threads, then the rings (ENOMEM past its maximum).
 */
function ringSpaceFor(name: string, m: ThreadedModule, vcpus: number, ringBytes: number): { memory: WebAssembly.Memory; byteOffset: number } {
  const limits = m.memory;
  const ringPages = Math.ceil((vcpus * ringBytes) / WASM_PAGE_BYTES);
  const stackPages = m.stackBytes / WASM_PAGE_BYTES;
  const pages = limits.minPages + stackPages + ringPages;
  if (pages > limits.maxPages) {
    const stacks = stackPages === 0 ? '' : ` and ${MAX_HARVESTER_THREADS - 1} thread stacks of ${WASM_THREAD_STACK_BYTES} B`;
    throw new ConfigError(
      '--harvester',
      name,
      'ENOMEM',
      `${vcpus} rings of ${ringBytes} B${stacks} need ${pages} pages of linear memory; the module allows ${limits.maxPages} (link with -Wl,--max-memory=${pages * WASM_PAGE_BYTES} or more)`,
    );
  }
  return { memory: newMemory(limits, pages), byteOffset: (limits.minPages + stackPages) * WASM_PAGE_BYTES };
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
  if (!stepHook.active || hookObservesOnly) return { module: checked.module, native: true };
  if (checked.instrumented === undefined) checked.instrumented = compiled(instrumentPlainAccesses(checked.bytes));
  return checked.instrumented === null ? { module: checked.module, native: true } : { module: checked.instrumented, native: false };
}

function compiled(bytes: Uint8Array<ArrayBuffer> | null): WebAssembly.Module | null {
  return bytes === null ? null : new WebAssembly.Module(bytes);
}

function instantiate(name: string, checked: ThreadedModule, kvm: HarvesterKvm): HarvesterInstance {
  checkThreads(name, checked, kvm);
  const memory = kvm.ringMemory ?? newMemory(checked.memory, checked.memory.minPages);
  const placement = kvm.ringMemory === null || kvm.log !== 'ring' ? null : { byteOffset: kvm.ring(0).byteOffset, ringBytes: kvm.ring(0).entryCount * 16, vcpus: kvm.vcpuCount };
  const run = moduleFor(checked);
  const statics = run.native ? null : staticsOf(checked, kvm, memory);
  const host = new WasmHost(kvm, memory, placement, run.native, statics);
  const instance = new WebAssembly.Instance(run.module, { [WASM_MEMORY_IMPORT.module]: { [WASM_MEMORY_IMPORT.name]: memory }, [WASM_IMPORT_MODULE]: host.imports() });
  if (statics !== null) statics.enabled = true;
  // Thread t > 0 runs on the t-th stack the harness reserved above the module's pages (stacks grow down).
  if (kvm.thread > 0) (instance.exports[WASM_STACK_POINTER_EXPORT] as WebAssembly.Global).value = checked.memory.minPages * WASM_PAGE_BYTES + kvm.thread * WASM_THREAD_STACK_BYTES;
  const init = instance.exports[WASM_EXPORT_INIT];
  if (typeof init === 'function' && kvm.thread === 0) {
    const rc = (init as () => number)();
    if (rc !== 0) throw new Error(`${name}: ${WASM_EXPORT_INIT}() returned ${rc}`);
  }
  // No thread collects before thread 0's init has returned (as after pthread_create).
  if (kvm.threads > 1) kvm.barrier();
  const collect = instance.exports[WASM_EXPORT_COLLECT] as CollectFn;
  return {
    collect(c: Collection) {
      host.begin(c);
      const rc = collect(c.final ? 1 : 0);
      if (rc !== 0) throw new Error(`${name}: ${WASM_EXPORT_COLLECT}(${c.final ? 1 : 0}) returned ${rc}`);
    },
  };
}

/** Several threads need a module that declares them (its stacks are reserved) and one memory they share. */
function checkThreads(name: string, checked: ThreadedModule, kvm: HarvesterKvm): void {
  if (kvm.threads <= 1) return;
  if (checked.stackBytes === 0) throw new ConfigError('--harvester-threads', String(kvm.threads), 'EINVAL', `${name} declares no threads: a C harvester says how many it runs on with DIRTYRING_THREADS(n) (include/dirtyring.h)`);
  if (kvm.ringMemory === null) throw new ConfigError('--log', kvm.log, 'EINVAL', `${name} runs on ${kvm.threads} threads, which share the memory the rings are placed in: ring logging only`);
}

/** In a controlled run of several threads, the static words they share are modelled (wasm-statics.ts). */
function staticsOf(checked: ThreadedModule, kvm: HarvesterKvm, memory: WebAssembly.Memory): WasmStatics | null {
  const table = kvm.shared instanceof HarvesterSharedWords ? kvm.shared.buffer : null;
  if (kvm.threads <= 1 || checked.stackPointer === null || table === null || harvesterWordLocations(table) === HARVESTER_SHARED_WORDS) return null;
  return new WasmStatics(memory, checked.stackPointer.top - WASM_THREAD_STACK_BYTES, table);
}

/** A VM with nothing in it, for dirtyring_log() at load time. */
function noVm(): HarvesterKvm {
  const none = (): never => {
    throw new Error('dirtyring_log() must not call into the VM');
  };
  return { log: 'ring', vcpuCount: 0, memslots: [], ringMemory: null, shared: new HarvesterSharedWords(), ring: none, resetDirtyRings: none, getDirtyLog: none, clearDirtyLog: none, thread: 0, threads: 1, barrier: none, kick: none, report: none };
}
