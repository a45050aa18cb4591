/**
 * The one thing every worker entry does: expose its API to the thread that started it, over
 * comlink, whether it runs as a Node worker_threads Worker or as a module Web Worker.
 */
import { expose } from 'comlink';
import { nodeEndpoint } from './node-endpoint.js';

/** `entry` names the worker file in the error a stray import (outside any worker) gets. */
export async function exposeToParent(api: object, entry: string): Promise<void> {
  const inBrowserWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
  if (inBrowserWorker) {
    expose(api);
    return;
  }
  // Vite replaces this module with an empty stub in browser bundles; it is never reached there.
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error(`${entry} must run inside a worker thread`);
  expose(api, nodeEndpoint(parentPort));
}
