/**
 * Spawning vCPU workers in Node: worker_threads running the compiled workers/vcpu.worker.js.
 */
import { Worker } from 'node:worker_threads';
import type { SpawnVcpuWorker, VcpuWorkerApi, VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';
import { compiledWorkerUrl, watchNodeWorker } from './node-worker.js';

/** The compiled vCPU worker (see compiledWorkerUrl), or DIRTYRING_VCPU_WORKER. */
function vcpuWorkerUrl(): URL {
  return compiledWorkerUrl('vcpu.worker.js', 'DIRTYRING_VCPU_WORKER', 'vCPU worker');
}

export const spawnNodeVcpuWorker: SpawnVcpuWorker = (vcpuIndex: number): VcpuWorkerHandle =>
  watchNodeWorker<VcpuWorkerApi>(new Worker(vcpuWorkerUrl(), { name: `vcpu${vcpuIndex}` }), `vCPU ${vcpuIndex} worker`);
