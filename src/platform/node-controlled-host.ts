/**
 * Spawning controlled participant workers in Node (stress harness): worker_threads running the
 * compiled workers/controlled.worker.js, wrapped by comlink through the Node port adapter.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import type { ControlledWorkerApi, ControlledWorkerHandle, SpawnControlledWorker } from '../stress/controlled/participant-api.js';
import { nodeEndpoint } from './node-endpoint.js';

/** The compiled worker next to this module (dist/), in dist/ (running from sources), or DIRTYRING_CONTROLLED_WORKER. */
export function controlledWorkerUrl(): URL {
  const override = process.env['DIRTYRING_CONTROLLED_WORKER'];
  if (override) return pathToFileURL(override);
  const sibling = new URL('../../workers/controlled.worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../../dist/workers/controlled.worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`compiled controlled worker not found (looked at ${fileURLToPath(sibling)}); run \`npm run build\``);
}

export const spawnNodeControlledWorker: SpawnControlledWorker = (index: number): ControlledWorkerHandle =>
  controlledWorkerHandle(new Worker(controlledWorkerUrl(), { name: `controlled${index}` }), index);

/**
 * The pool's handle on a worker speaking the controlled worker API: a crash or an exit we did
 * not ask for is recorded as its failure, which the pool and the engine watch (a comlink call
 * to a dead worker never settles).
 */
export function controlledWorkerHandle(worker: Worker, index: number): ControlledWorkerHandle {
  let failure: string | null = null;
  let exited = false;
  let terminating = false;
  worker.on('error', (e: unknown) => {
    failure = e instanceof Error ? (e.stack ?? e.message) : String(e);
  });
  worker.on('exit', (code) => {
    exited = true;
    if (failure === null && !terminating) failure = `controlled worker ${index} exited with code ${code}`;
  });
  const api = wrap<ControlledWorkerApi>(nodeEndpoint(worker));
  return {
    api,
    get failure() {
      return failure;
    },
    async terminate() {
      terminating = true;
      api[releaseProxy]();
      if (!exited) await worker.terminate();
    },
  };
}
