/**
 * Spawning controlled participant workers in a browser (the app's trace debugger and stress
 * campaign): module Web Workers built by Vite from workers/controlled.worker.ts, the source
 * Node runs. As in browser-vcpu-host.ts, `new URL(...)` must stay inline in the constructor.
 */
import { releaseProxy, wrap } from 'comlink';
import type { ControlledWorkerApi, ControlledWorkerHandle, SpawnControlledWorker } from '../stress/controlled/participant-api.js';

export const spawnBrowserControlledWorker: SpawnControlledWorker = (index: number): ControlledWorkerHandle => {
  const worker = new Worker(new URL('../../workers/controlled.worker.ts', import.meta.url), {
    type: 'module',
    name: `controlled${index}`,
  });
  let failure: string | null = null;
  worker.addEventListener('error', (e: ErrorEvent) => {
    failure = `controlled worker ${index}: ${e.message || 'failed to load'}`;
  });
  const api = wrap<ControlledWorkerApi>(worker);
  return {
    api,
    get failure() {
      return failure;
    },
    async terminate() {
      api[releaseProxy]();
      worker.terminate();
    },
  };
};
