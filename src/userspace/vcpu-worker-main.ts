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
  return {
    async start(config: VcpuThreadConfig): Promise<void> {
      if (thread) throw new Error('worker already started');
      thread = new VcpuThread(config);
      done = thread.main();
    },
    async startDevice(config: DeviceThreadConfig): Promise<void> {
      if (thread) throw new Error('worker already started');
      thread = new DeviceThread(config);
      done = thread.main();
    },
    async startDestination(config: DestinationThreadConfig): Promise<void> {
      if (thread) throw new Error('worker already started');
      thread = new DestinationThread(config);
      done = thread.main();
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
