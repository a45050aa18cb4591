/**
 * The vCPU worker: one source for Node (worker_threads) and the browser (a module Web Worker).
 * It only wires the control plane; everything it runs lives in src/ (kernel + userspace).
 */
import { expose } from 'comlink';
import { nodeEndpoint } from '../src/platform/node-endpoint.js';
import { createVcpuWorkerApi } from '../src/userspace/vcpu-worker-main.js';
// Registers the stress harness's step-hook kind, which a run may ask this thread to install.
import '../src/stress/harvesters/step-perturbation.js';

const api = createVcpuWorkerApi();
const inBrowserWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

if (inBrowserWorker) {
  expose(api);
} else {
  // Vite replaces this module with an empty stub in browser bundles; it is never reached there.
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('vcpu.worker must run inside a worker thread');
  expose(api, nodeEndpoint(parentPort));
}
