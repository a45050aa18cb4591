/**
 * The user harvesters a stress campaign or a migration in the page can put in the collector's
 * place: the live view's list without the built-in variants (those are collectors, not user
 * harvesters), and how the threads find the chosen one. A campaign names its harvester by an app URL
 * (harvester-source.ts); every thread of the campaign (the campaign's worker, each controlled
 * participant) installs appProvider, which maps that URL back to the bundled definition or
 * compiles the picked module once, in that thread, as `--harvester FILE` loads it in each thread.
 */
import type { HarvesterDefinition } from '../harvester/contract.js';
import type { UserHarvesterRef } from '../stress/campaign-spec.js';
import { type HarvesterProvider, appHarvesterId, appHarvesterUrl } from '../stress/harvester-source.js';
import { type HarvesterChoice, findHarvester, harvesterChoices } from './harvesters.js';
import { UPLOADED_WASM_ID, type WasmFile, checkedWasm } from './wasm-choices.js';

/** The built-in collectors: no user harvester. */
export const BUILTIN_COLLECTORS = 'builtin';

/** The choices a campaign offers: the built-in collectors, then every user harvester the page knows. */
export function campaignHarvesterChoices(): readonly HarvesterChoice[] {
  return harvesterChoices().filter((c) => c.id === BUILTIN_COLLECTORS || c.definition !== undefined);
}

/** The definition of choice `id` in this thread; the picked module is compiled and checked here. */
export function definitionOf(id: string, wasm: WasmFile | null): HarvesterDefinition {
  if (id === UPLOADED_WASM_ID) {
    if (wasm === null) throw new Error('harvester: no .wasm file chosen (pick one built with dirtyring build-harvester)');
    return checkedWasm(wasm.name, wasm.bytes);
  }
  const d = findHarvester(id)?.definition;
  if (d === undefined) throw new Error(`harvester: no harvester "${id}" a campaign can run`);
  return d();
}

/**
 * This thread's provider for the app's harvester URLs. Each definition is built once per thread
 * (a WebAssembly harvester's module is compiled once, its memory holds the run's rings).
 */
export function appProvider(wasm: WasmFile | null): HarvesterProvider {
  const built = new Map<string, HarvesterDefinition>();
  return (url) => {
    const id = appHarvesterId(url);
    if (id === null) return null;
    let d = built.get(id);
    if (d === undefined) built.set(id, (d = definitionOf(id, wasm)));
    return d;
  };
}

/**
 * What the campaign's spec says of choice `id` (null: the built-in collectors). The harvester
 * runs where the CLI runs it without --harvester-threads: a single-threaded one on the
 * campaign's thread in free runs (0) and as the userspace participant in controlled runs; one
 * with threads of its own (`threads`, DIRTYRING_THREADS) on that many harvester-thread workers in
 * free runs (harvester-thread-host.ts) and as participants H0, H1… in controlled runs.
 */
export function campaignHarvesterRef(id: string, wasm: WasmFile | null): UserHarvesterRef | null {
  if (id === BUILTIN_COLLECTORS || id === '') return null;
  const d = definitionOf(id, wasm);
  return { url: appHarvesterUrlOf(id, d, wasm), name: d.name, log: d.log, threads: d.threads ?? 0 };
}

/** The app URL of choice `id` (defining `d`), ending in the name a run's description shows. */
export function appHarvesterUrlOf(id: string, d: HarvesterDefinition, wasm: WasmFile | null): string {
  const fileName = id === UPLOADED_WASM_ID && wasm !== null ? wasm.name : `${d.name}${d.ringSpace !== undefined ? '.wasm' : '.ts'}`;
  return appHarvesterUrl(id, fileName);
}
