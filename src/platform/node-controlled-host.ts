/**
 * Spawning controlled participant workers in Node (stress harness): worker_threads running the
 * compiled workers/controlled.worker.js.
 */
import { Worker } from 'node:worker_threads';
import type { ControlledWorkerApi, ControlledWorkerHandle, SpawnControlledWorker } from '../stress/controlled/participant-api.js';
import { compiledWorkerUrl, watchNodeWorker } from './node-worker.js';

/** The compiled controlled worker (see compiledWorkerUrl), or DIRTYRING_CONTROLLED_WORKER. */
function controlledWorkerUrl(): URL {
  return compiledWorkerUrl('controlled.worker.js', 'DIRTYRING_CONTROLLED_WORKER', 'controlled worker');
}

export const spawnNodeControlledWorker: SpawnControlledWorker = (index: number): ControlledWorkerHandle =>
  controlledWorkerHandle(new Worker(controlledWorkerUrl(), { name: `controlled${index}` }), index);

/** The pool's handle on a worker speaking the controlled worker API (the pool watches `failure`). */
export function controlledWorkerHandle(worker: Worker, index: number): ControlledWorkerHandle {
  return watchNodeWorker<ControlledWorkerApi>(worker, `controlled worker ${index}`);
}
