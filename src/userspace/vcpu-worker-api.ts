/**
 * The control plane between userspace and a vCPU worker (comlink RPC, always with timeouts).
 * The data path never goes through here: it is shared memory and Atomics.
 */
import type { Remote } from 'comlink';
import type { WorkloadConfig } from '../guest/workloads.js';
import type { SlotBuffers } from '../kernel/memslots.js';
import type { TrackNotifierSpec } from '../kernel/page-track-notifier.js';
import type { VmBuffers } from '../kernel/vm.js';
import type { ReaperBuffers } from './self-reaper.js';
import type { DestinationThreadConfig } from './migration/destination.js';
import type { StepHookSpec } from '../kernel/step-hook.js';

export interface VcpuThreadConfig {
  readonly vm: VmBuffers;
  readonly vcpuIndex: number;
  readonly vcpuCount: number;
  /** GuestGlobalsLayout block (the guest's `iteration`). */
  readonly globals: SharedArrayBuffer;
  readonly workload: WorkloadConfig;
  /** Log every store (the instruction-emulator path) instead of the fault path. */
  readonly emulateAllStores?: boolean;
  /** ms inside KVM_RUN before the thread yields to its message port. */
  readonly preemptAfterMs?: number;
  /**
   * React to exit 31 by reaping the own ring and resetting (SharedReaper, QEMU's reaction)
   * instead of stalling until userspace harvests, resets and wakes the thread.
   */
  readonly selfReap?: ReaperBuffers;
  /** Record each ring-full exit's time to resumption (a StallRecorder buffer). */
  readonly stallSamples?: SharedArrayBuffer;
  /** Dirty-limit: this vCPU's VcpuThrottleLayout block (sleep after each exit 31); migration only. */
  readonly throttle?: SharedArrayBuffer;
  /** The stress harness's random delays at this thread's step points (a free-running stress run). */
  readonly stepHook?: StepHookSpec;
  /** Record coverage into this block of a run's coverage buffer (kernel/coverage.ts). */
  readonly coverage?: CoverageTarget;
}

/** Where a thread records coverage: block `thread` of `buffer`. */
export interface CoverageTarget {
  readonly buffer: SharedArrayBuffer;
  readonly thread: number;
}

/** A DMA device thread: writes guest memory with no running vCPU. */
export interface DeviceThreadConfig {
  readonly vm: VmBuffers;
  readonly deviceIndex: number;
  /** DeviceLayout block. */
  readonly device: SharedArrayBuffer;
  readonly globals: SharedArrayBuffer;
  /** Pages the device writes (ranges) and the run seed. */
  readonly workload: WorkloadConfig;
  /** Pause between two writes, in microseconds. */
  readonly writeIntervalUs: number;
  /** Record coverage into this block of a run's coverage buffer. */
  readonly coverage?: CoverageTarget;
}

/**
 * One worker runs one guest-side thread: a vCPU (`start`) or a DMA device (`startDevice`).
 */
export interface VcpuWorkerApi {
  /** Attach to the VM and start the vCPU thread's loop (parked until CONTROL = RUN). */
  start(config: VcpuThreadConfig): Promise<void>;
  /** Attach to the VM and start a device thread's loop instead (parked until CONTROL = RUN). */
  startDevice(config: DeviceThreadConfig): Promise<void>;
  /** Run a migration's destination thread instead: apply pages from the wire (migration only). */
  startDestination(config: DestinationThreadConfig): Promise<void>;
  /** Make a memslot created after start usable by this thread. */
  attachSlot(index: number, buffers: SlotBuffers): Promise<void>;
  /**
   * Page write-tracking: build this thread's instance of a page-track notifier being
   * registered (table entry `id`, `generation`), before userspace activates it
   * (src/userspace/page-track-control.ts).
   */
  attachTrackNotifier(id: number, generation: number, spec: TrackNotifierSpec): Promise<void>;
  /** Resolve when the loop has ended: null, or the error that ended it. */
  join(): Promise<string | null>;
  ping(): Promise<string>;
}

/** A spawned vCPU worker, on any platform. */
export interface VcpuWorkerHandle {
  readonly api: Remote<VcpuWorkerApi>;
  /** Set when the worker crashed or exited unexpectedly. */
  readonly failure: string | null;
  terminate(): Promise<void>;
}

export type SpawnVcpuWorker = (vcpuIndex: number) => VcpuWorkerHandle;
