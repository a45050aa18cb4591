/**
 * vCPU workers reused across runs (stress campaigns): a run's `spawn` takes an idle worker when
 * there is one, and its `terminate` gives the worker back — but only if the worker's thread
 * ended cleanly (join resolved) and the worker never failed; anything else is really
 * terminated. Starting a worker costs far more than a small run.
 */
import type { Remote } from 'comlink';
import type { SpawnVcpuWorker, VcpuWorkerApi, VcpuWorkerHandle } from './vcpu-worker-api.js';

export class VcpuWorkerPool {
  private readonly idle: VcpuWorkerHandle[] = [];
  private spawned = 0;

  constructor(private readonly spawnFresh: SpawnVcpuWorker) {}

  /** A SpawnVcpuWorker for runDirtyLog. */
  readonly spawn: SpawnVcpuWorker = (): VcpuWorkerHandle => {
    const inner = this.idle.pop() ?? this.spawnFresh(this.spawned++);
    let joined = false;
    const target = inner.api;
    const api = {
      start: (c: Parameters<VcpuWorkerApi['start']>[0]) => target.start(c),
      startDevice: (c: Parameters<VcpuWorkerApi['startDevice']>[0]) => target.startDevice(c),
      attachSlot: (i: number, b: Parameters<VcpuWorkerApi['attachSlot']>[1]) => target.attachSlot(i, b),
      join: async () => {
        const r = await target.join();
        joined = true;
        return r;
      },
      ping: () => target.ping(),
    } as unknown as Remote<VcpuWorkerApi>;
    const idle = this.idle;
    return {
      api,
      get failure() {
        return inner.failure;
      },
      async terminate() {
        if (joined && inner.failure === null) idle.push(inner);
        else await inner.terminate();
      },
    };
  };

  async close(): Promise<void> {
    const all = this.idle.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}
