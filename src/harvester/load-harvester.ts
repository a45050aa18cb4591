/**
 * Loading a user's harvester module (Node): a file path or URL to an ES module (`.js`, `.mjs`,
 * `.ts`, `.mts`) whose default export (or export named `harvester`) is a defineHarvester value,
 * or a C harvester compiled to WebAssembly (`.wasm`, src/harvester/wasm/).
 * TypeScript needs no build step: Node 20 cannot strip types, so the first `.ts` harvester a
 * thread loads registers module hooks (ts-hooks.ts) that transpile `.ts` files with the
 * TypeScript compiler as they load. Every failure is a HarvesterLoadError: one line naming the
 * file and the reason. Loaded definitions are kept per thread by URL, so that a controlled
 * participant's synchronous code can find the one its scenario names.
 */
// Namespace imports, touched only when a module is loaded: the browser app bundles this module
// (through the controlled participants) and Vite's stub of a node: module throws at load on a
// named import, but only on use through a namespace.
import * as fs from 'node:fs';
import * as nodeModule from 'node:module';
import * as nodePath from 'node:path';
import * as nodeUrl from 'node:url';
import type { ErrnoName } from '../abi/errno.js';
import { ConfigError } from '../base/config-error.js';
import { type HarvesterDefinition, isHarvesterDefinition } from './contract.js';
import { TS_HOOKS_SOURCE } from './ts-hooks.js';
import { wasmHarvester } from './wasm/wasm-harvester.js';
import { WasmModuleError } from './wasm/wasm-module.js';

/** A harvester module that cannot be used: bad input, one line (`--harvester FILE: ERRNO, why`). */
export class HarvesterLoadError extends ConfigError {
  constructor(file: string, errno: ErrnoName, reason: string) {
    super('--harvester', file, errno, reason);
    this.name = 'HarvesterLoadError';
  }
}

const TS_EXTENSION = /\.m?ts$/;
const JS_EXTENSION = /\.m?js$/;
const WASM_EXTENSION = /\.wasm$/;

const loaded = new Map<string, HarvesterDefinition>();
let tsHooks = false;

/** The file: URL of a harvester given as a path (relative to `base`), a file: URL string, or a URL. */
export function harvesterUrl(spec: string | URL, base = process.cwd()): string {
  if (spec instanceof URL) return spec.href;
  if (spec.startsWith('file:')) return new URL(spec).href;
  return nodeUrl.pathToFileURL(nodePath.resolve(base, spec)).href;
}

/** Load (once per thread) the harvester module at `spec`. */
export async function loadHarvester(spec: string | URL, base?: string): Promise<{ url: string; definition: HarvesterDefinition }> {
  const shown = spec instanceof URL ? spec.href : spec;
  if (typeof spec !== 'string' && !(spec instanceof URL)) throw new HarvesterLoadError(String(spec), 'EINVAL', 'must be a file path or a file: URL');
  const url = harvesterUrl(spec, base);
  const known = loaded.get(url);
  if (known !== undefined) return { url, definition: known };
  const path = nodeUrl.fileURLToPath(url);
  if (!fs.existsSync(path)) throw new HarvesterLoadError(shown, 'ENOENT', 'no such file');
  if (!fs.statSync(path).isFile()) throw new HarvesterLoadError(shown, 'EINVAL', 'not a file');
  if (WASM_EXTENSION.test(path)) return { url, definition: loadWasm(shown, url, path) };
  if (TS_EXTENSION.test(path)) registerTsHooks(shown);
  else if (!JS_EXTENSION.test(path)) throw new HarvesterLoadError(shown, 'EINVAL', 'must be an ES module (.js, .mjs, .ts or .mts) or a WebAssembly module (.wasm)');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new HarvesterLoadError(shown, 'EINVAL', `threw on load: ${oneLine(e)}`);
  }
  const definition = mod['default'] ?? mod['harvester'];
  if (!isHarvesterDefinition(definition)) {
    throw new HarvesterLoadError(shown, 'EINVAL', "exports no harvester (expected `export default defineHarvester({ name, log, create })`)");
  }
  loaded.set(url, definition);
  return { url, definition };
}

/** A harvester this thread has loaded already (controlled participants load it before the run). */
export function loadedHarvester(url: string): HarvesterDefinition {
  // A WebAssembly harvester loads synchronously: a thread that needs its ring space (the
  // controlled engine building a run's VM, a replay) may not have loaded it yet.
  if (!loaded.has(url) && WASM_EXTENSION.test(url)) loadWasm(url, url, nodeUrl.fileURLToPath(url));
  const d = loaded.get(url);
  if (d === undefined) throw new Error(`harvester ${url} was not loaded in this thread`);
  return d;
}

/**
 * Where the rings of a run of the harvester at `url` go: a WebAssembly harvester's memory
 * (loaded here if this thread has not yet), else undefined — a JS harvester needs no ring space,
 * so a thread that builds the VM need not load it (the controlled engine, a replay).
 */
export function harvesterRingSpace(url: string): HarvesterDefinition['ringSpace'] {
  return WASM_EXTENSION.test(url) ? loadedHarvester(url).ringSpace : undefined;
}

/** A C harvester compiled to WebAssembly (src/harvester/wasm/). */
function loadWasm(shown: string, url: string, path: string): HarvesterDefinition {
  if (!fs.existsSync(path)) throw new HarvesterLoadError(shown, 'ENOENT', 'no such file');
  let definition: HarvesterDefinition;
  try {
    definition = wasmHarvester(nodePath.basename(path, '.wasm'), new Uint8Array(fs.readFileSync(path)));
  } catch (e) {
    if (e instanceof WasmModuleError) throw new HarvesterLoadError(shown, 'EINVAL', e.message);
    throw e;
  }
  loaded.set(url, definition);
  return definition;
}

function registerTsHooks(shown: string): void {
  if (tsHooks) return;
  let typescript: string;
  try {
    typescript = nodeUrl.pathToFileURL(nodeModule.createRequire(import.meta.url).resolve('typescript')).href;
  } catch {
    throw new HarvesterLoadError(shown, 'ENOENT', 'a TypeScript harvester needs the `typescript` package, which is not installed');
  }
  nodeModule.register(`data:text/javascript,${encodeURIComponent(TS_HOOKS_SOURCE)}`, { data: { typescript } });
  tsHooks = true;
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return msg.split('\n')[0]!;
}
