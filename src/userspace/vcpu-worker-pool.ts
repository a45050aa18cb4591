/**
 * vCPU workers reused across runs (stress campaigns): a run's `spawn` takes an idle worker when
 * there is one, and its `terminate` gives the worker back — but only if the worker's thread
 * ended cleanly (join resolved) and the worker never failed; anything else is really
 * terminated. Starting a worker costs far more than a small run.
 */
import type { SpawnVcpuWorker, VcpuWorkerHandle } from './vcpu-worker-api.js';

export class VcpuWorkerPool {
  private readonly idle: VcpuWorkerHandle[] = [];
  private spawned = 0;

  constructor(private readonly spawnFresh: SpawnVcpuWorker) {}

  /** A SpawnVcpuWorker for runDirtyLog. */
  readonly spawn: SpawnVcpuWorker = (): VcpuWorkerHandle => {
    const inner = this.idle.pop() ?? this.spawnFresh(this.spawned++);
    let joined = false;
    const target = inner.api;
    const join = async (): Promise<string | null> => {
      const r = await target.join();
      joined = true;
      return r;
    };
    // Forward every method of the worker API (present and future ones alike); only `join` is
    // intercepted, to learn whether the worker ended cleanly and can be reused.
    const api = new Proxy(target, {
      get: (t, prop, receiver) => (prop === 'join' ? join : Reflect.get(t, prop, receiver)),
    });
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
