/**
 * C harvesters compiled to WebAssembly in the browser app: the shipped examples (compiled by
 * vite-c-harvesters.ts when the page was built, if clang was there) and a module the user picks
 * as a file. Both go through wasmHarvester(), the loader `--harvester my.wasm` uses in Node, so
 * a module is refused here for the same reasons and with the same words. A module is compiled
 * in the thread that runs it (the live run's worker): the page sends the bytes once, at the
 * start; the rings then live in the module's shared WebAssembly.Memory (its ringSpace).
 */
import { C_EXAMPLES, C_EXAMPLES_NOTE } from 'virtual:c-harvesters';
import type { HarvesterDefinition } from '../harvester/contract.js';
import { wasmHarvester } from '../harvester/wasm/wasm-harvester.js';
import { WasmModuleError } from '../harvester/wasm/wasm-module.js';

/** The harvester id of the module the user picked (its bytes travel with the run's start). */
export const UPLOADED_WASM_ID = 'wasm-file';

/** Why the C examples are missing from the list (no clang where the page was built), or null. */
export const C_EXAMPLES_MISSING: string | null = C_EXAMPLES_NOTE;

/** A module the user picked: its file name and bytes. */
export interface WasmFile {
  readonly name: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

export interface WasmChoice {
  readonly id: string;
  readonly label: string;
  /** Built (and checked) at the first call, in the thread that calls it. */
  definition(): HarvesterDefinition;
}

const EXAMPLE_LABELS: Record<string, string> = {
  'qemu-reaper': 'QEMU-style reaper',
  'selftest-collector': 'selftest collector',
  'relaxed-flags': 'plain flags load (buggy, arm64 only)',
  'plain-reset': 'plain RESET store (buggy)',
  'per-vcpu-threads': 'per-vCPU reaper threads',
  'flag-handoff-reset': 'flag hand-off to the resetting thread (buggy, arm64 only)',
  'flag-handoff-reset-release': 'flag hand-off, release/acquire',
};

/** ", 2 threads" for a harvester with threads of its own (else nothing): the lists show it. */
export const threadsNote = (threads: number | null | undefined): string => (threads === undefined || threads === null ? '' : `, ${threads} thread${threads === 1 ? '' : 's'}`);

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function lazy(build: () => HarvesterDefinition): () => HarvesterDefinition {
  let d: HarvesterDefinition | null = null;
  return () => (d ??= build());
}

/** The shipped C examples this page was built with (none without clang). */
export function cExampleChoices(): WasmChoice[] {
  return C_EXAMPLES.map((e) => ({
    id: `c-${e.name}`,
    label: `C example: ${EXAMPLE_LABELS[e.name] ?? e.name} (WebAssembly${threadsNote(e.threads)})`,
    definition: lazy(() => checkedWasm(`${e.name}.wasm`, base64Bytes(e.base64))),
  }));
}

/**
 * The harvester a picked file defines, checked as `--harvester FILE.wasm` checks it (by its
 * content: a file of any name that is no module is refused as such); a bad module throws one line naming the file, the errno and the reason.
 */
export function checkedWasm(fileName: string, bytes: Uint8Array<ArrayBuffer>): HarvesterDefinition {
  try {
    return wasmHarvester(fileName.replace(/\.wasm$/i, ''), bytes);
  } catch (e) {
    if (e instanceof WasmModuleError) throw new Error(`harvester file ${fileName}: EINVAL, ${e.message}`);
    throw e;
  }
}
