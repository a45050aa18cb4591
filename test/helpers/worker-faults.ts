/**
 * Fault injection: worker hosts that keep each worker_threads Worker, so that a test can kill
 * one mid-run. The kill goes to the Worker itself, not through the handle the harness holds:
 * for the harness it is a worker that died on its own (a crash, the OOM killer taking a
 * thread), which it must notice, name, and survive. No product code knows about it.
 */
import { Worker } from 'node:worker_threads';
import { controlledWorkerHandle } from '../../src/platform/node-controlled-host.js';
import { compiledWorkerUrl, watchNodeWorker } from '../../src/platform/node-worker.js';
import type { SpawnControlledWorker } from '../../src/stress/controlled/participant-api.js';
import type { SpawnVcpuWorker, VcpuWorkerApi } from '../../src/userspace/vcpu-worker-api.js';

export class WorkerKiller {
  /** Every worker spawned, by spawn index (the latest one for an index spawned again). */
  private readonly workers = new Map<number, Worker>();
  readonly killed: number[] = [];

  /** Spawns vCPU workers (and device and destination threads, which run the same worker). */
  readonly spawnVcpu: SpawnVcpuWorker = (index) => {
    const w = new Worker(compiledWorkerUrl('vcpu.worker.js', 'DIRTYRING_VCPU_WORKER', 'vCPU worker'), { name: `vcpu${index}` });
    this.workers.set(index, w);
    return watchNodeWorker<VcpuWorkerApi>(w, `vCPU ${index} worker`);
  };

  /** Spawns controlled participants: 0 is userspace (the harvester), 1.. the vCPUs. */
  readonly spawnControlled: SpawnControlledWorker = (index) => {
    const w = new Worker(compiledWorkerUrl('controlled.worker.js', 'DIRTYRING_CONTROLLED_WORKER', 'controlled worker'), { name: `controlled${index}` });
    this.workers.set(index, w);
    return controlledWorkerHandle(w, index);
  };

  /** Kills worker `index` as a crash would (an exit the harness did not ask for). */
  kill(index: number): void {
    const w = this.workers.get(index);
    if (w === undefined) throw new Error(`no worker ${index} was spawned`);
    this.killed.push(index);
    void w.terminate();
  }
}
