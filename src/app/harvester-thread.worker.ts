/**
 * A thread of a threaded user harvester in the page: what workers/harvester.worker.ts is in
 * Node (the same runner, src/harvester/thread-runner.ts), plus `provide`, which the spawner
 * sends first (comlink keeps the order of calls, and `provide` is synchronous) so that this
 * thread resolves the app's harvester URL to the bundled definition or the picked module, as
 * campaign-participant.worker.ts does for a controlled participant.
 */
import { exposeToParent } from '../platform/expose-worker.js';
import { runHarvesterThread } from '../harvester/thread-runner.js';
import type { HarvesterThreadApi } from '../harvester/thread-layout.js';
import { provideHarvesters } from '../stress/harvester-source.js';
import type { WasmFile } from './wasm-choices.js';
import { appProvider } from './user-harvesters.js';

export interface AppHarvesterThreadExtra {
  /** The module the user picked, if any (compiled here when the thread first loads it). */
  provide(wasm: WasmFile | null): void;
}

const api: HarvesterThreadApi & AppHarvesterThreadExtra = {
  run: runHarvesterThread,
  provide(wasm) {
    provideHarvesters(appProvider(wasm));
  },
};

await exposeToParent(api, 'harvester-thread.worker');
