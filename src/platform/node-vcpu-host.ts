/**
 * Spawning vCPU workers in Node: worker_threads running the compiled worker, wrapped by
 * comlink through the Node port adapter.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import type { SpawnVcpuWorker, VcpuWorkerApi, VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';
import { nodeEndpoint } from './node-endpoint.js';

/**
 * Where the compiled worker is: next to this module when running from dist/, or in dist/ when
 * running from TypeScript sources (tests), or wherever DIRTYRING_VCPU_WORKER points.
 */
export function vcpuWorkerUrl(): URL {
  const override = process.env['DIRTYRING_VCPU_WORKER'];
  if (override) return pathToFileURL(override);
  const sibling = new URL('../../workers/vcpu.worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../../dist/workers/vcpu.worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`compiled vCPU worker not found (looked at ${fileURLToPath(sibling)}); run \`npm run build\``);
}

export const spawnNodeVcpuWorker: SpawnVcpuWorker = (vcpuIndex: number): VcpuWorkerHandle => {
  const worker = new Worker(vcpuWorkerUrl(), { name: `vcpu${vcpuIndex}` });
  let failure: string | null = null;
  let exited = false;
  let terminating = false;
  worker.on('error', (e: unknown) => {
    failure = e instanceof Error ? (e.stack ?? e.message) : String(e);
  });
  worker.on('exit', (code) => {
    exited = true;
    if (code !== 0 && failure === null && !terminating) failure = `vCPU ${vcpuIndex} worker exited with code ${code}`;
  });
  const api = wrap<VcpuWorkerApi>(nodeEndpoint(worker));
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
};
