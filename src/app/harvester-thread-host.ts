/**
 * Spawning the threads of a threaded user harvester in the page (the live run, the stress
 * view's free runs, the migration view): module Web Workers built by Vite from
 * harvester-thread.worker.ts, which runs the runner workers/harvester.worker.ts runs in Node
 * (src/platform/node-harvester-host.ts). As in browser-vcpu-host.ts, `new URL(...)` must stay
 * inline in the Worker constructor. Each thread is told first which module the user picked.
 */
import type { HarvesterThreadApi, SpawnHarvesterThread } from '../harvester/thread-layout.js';
import { hostBrowserWorker } from '../platform/browser-worker.js';
import type { AppHarvesterThreadExtra } from './harvester-thread.worker.js';
import type { WasmFile } from './wasm-choices.js';

export function appHarvesterThreadSpawner(wasm: WasmFile | null): SpawnHarvesterThread {
  return (thread) => {
    const worker = new Worker(new URL('./harvester-thread.worker.ts', import.meta.url), { type: 'module', name: `harvester${thread}` });
    const handle = hostBrowserWorker<HarvesterThreadApi & AppHarvesterThreadExtra>(worker, `harvester thread ${thread} worker`);
    // Sent before run(); a failure shows as the run's own (the thread cannot find its harvester).
    handle.api.provide(wasm).catch(() => undefined);
    return handle;
  };
}
