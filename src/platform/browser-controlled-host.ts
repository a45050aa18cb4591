/**
 * Spawning controlled participant workers in a browser (the app's trace debugger and stress
 * campaign): module Web Workers built by Vite from workers/controlled.worker.ts, the source
 * Node runs. As in browser-vcpu-host.ts, `new URL(...)` must stay inline in the constructor.
 */
import type { ControlledWorkerApi, ControlledWorkerHandle, SpawnControlledWorker } from '../stress/controlled/participant-api.js';
import { hostBrowserWorker } from './browser-worker.js';

export const spawnBrowserControlledWorker: SpawnControlledWorker = (index: number): ControlledWorkerHandle => {
  const worker = new Worker(new URL('../../workers/controlled.worker.ts', import.meta.url), {
    type: 'module',
    name: `controlled${index}`,
  });
  return hostBrowserWorker<ControlledWorkerApi>(worker, `controlled worker ${index}`);
};
