/**
 * A controlled participant worker (stress harness, issue 6): a vCPU or userspace under the
 * controlled scheduler. Like workers/vcpu.worker.ts it only wires the control plane.
 */
import { expose } from 'comlink';
import { nodeEndpoint } from '../src/platform/node-endpoint.js';
import { createControlledWorkerApi } from '../src/stress/controlled/participant-main.js';

const api = createControlledWorkerApi();
const inBrowserWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

if (inBrowserWorker) {
  expose(api);
} else {
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('controlled.worker must run inside a worker thread');
  expose(api, nodeEndpoint(parentPort));
}
