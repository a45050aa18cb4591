/**
 * Spawning vCPU workers in a browser: module Web Workers built by Vite from the same worker
 * source that Node runs. Vite only recognises the worker when `new URL(...)` is written
 * inline in the Worker constructor, as here.
 */
import type { SpawnVcpuWorker, VcpuWorkerApi, VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';
import { hostBrowserWorker } from './browser-worker.js';

export const spawnBrowserVcpuWorker: SpawnVcpuWorker = (vcpuIndex: number): VcpuWorkerHandle => {
  const worker = new Worker(new URL('../../workers/vcpu.worker.ts', import.meta.url), {
    type: 'module',
    name: `vcpu${vcpuIndex}`,
  });
  return hostBrowserWorker<VcpuWorkerApi>(worker, `vCPU ${vcpuIndex} worker`);
};
