/**
 * Spawning vCPU workers in a browser: module Web Workers built by Vite from the same worker
 * source that Node runs. Vite only recognises the worker when `new URL(...)` is written
 * inline in the Worker constructor, as here.
 */
import { releaseProxy, wrap } from 'comlink';
import type { SpawnVcpuWorker, VcpuWorkerApi, VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';

export const spawnBrowserVcpuWorker: SpawnVcpuWorker = (vcpuIndex: number): VcpuWorkerHandle => {
  const worker = new Worker(new URL('../../workers/vcpu.worker.ts', import.meta.url), {
    type: 'module',
    name: `vcpu${vcpuIndex}`,
  });
  let failure: string | null = null;
  worker.addEventListener('error', (e: ErrorEvent) => {
    failure = `vCPU ${vcpuIndex} worker: ${e.message || 'failed to load'}`;
  });
  const api = wrap<VcpuWorkerApi>(worker);
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
