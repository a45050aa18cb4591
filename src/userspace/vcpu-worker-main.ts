/**
 * The body of the vCPU worker, shared by the Node and browser entries: the object comlink
 * exposes. Kept apart from workers/vcpu.worker.ts so that it can be imported without
 * exposing anything.
 */
import { createTrackNotifier } from '../pagetrack/kinds.js';
import { DeviceThread } from './device-thread.js';
import { DestinationThread, type DestinationThreadConfig } from './migration/destination.js';
import { VcpuThread } from './vcpu-thread.js';
import type { DeviceThreadConfig, VcpuThreadConfig, VcpuWorkerApi } from './vcpu-worker-api.js';

export function createVcpuWorkerApi(): VcpuWorkerApi {
  let thread: VcpuThread | DeviceThread | DestinationThread | null = null;
  let done: Promise<void> | null = null;
  // A worker whose thread has ended may be started again (the stress harness reuses workers
  // across runs: spawning one costs far more than a small run).
  let ended = false;
  const begin = (t: VcpuThread | DeviceThread | DestinationThread): void => {
    thread = t;
    ended = false;
    done = t.main().finally(() => {
      ended = true;
    });
  };
  return {
    async start(config: VcpuThreadConfig): Promise<void> {
      if (thread && !ended) throw new Error('worker already started');
      begin(new VcpuThread(config));
    },
    async startDevice(config: DeviceThreadConfig): Promise<void> {
      if (thread && !ended) throw new Error('worker already started');
      begin(new DeviceThread(config));
    },
    async startDestination(config: DestinationThreadConfig): Promise<void> {
      if (thread && !ended) throw new Error('worker already started');
      begin(new DestinationThread(config));
    },
    async attachSlot(index, buffers): Promise<void> {
      if (!thread) throw new Error('worker not started');
      if (thread instanceof DestinationThread) throw new Error('a destination thread has no VM');
      thread.vm.memslots.attach(index, buffers);
    },
    async attachTrackNotifier(id, generation, spec): Promise<void> {
      if (!thread) throw new Error('worker not started');
      if (thread instanceof DestinationThread) throw new Error('a destination thread has no VM');
      thread.vm.pageTrack.attachNotifier(id, generation, createTrackNotifier(spec, thread.vm));
    },
    async join(): Promise<string | null> {
      if (!thread || !done) return 'vCPU worker not started';
      await done;
      return thread.error;
    },
    async ping(): Promise<string> {
      return 'pong';
    },
  };
}
