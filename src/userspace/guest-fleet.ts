/**
 * What a VMM does before and after running a guest, shared by `dirtyring run` and `dirtyring
 * migrate`: build the VM in the order QEMU does (logging capability, memslots, vCPUs), and start,
 * count and stop the worker threads around it — one per vCPU, one per DMA device.
 */
import { kernelMutants } from './known-bugs.js';
import {
  DIRTY_GFN_BYTES,
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SIZE,
  SMM_AS_ID,
  encodeSlot,
} from '../abi/constants.js';
import { DeviceLayout } from './device-layout.js';
import { GuestGlobalsLayout } from '../guest/guest-memory.js';
import { SharedBlock } from '../abi/layout.js';
import { VcpuLayout } from '../kernel/vcpu-layout.js';
import type { WorkloadConfig } from '../guest/workloads.js';
import type { Memslot } from '../kernel/memslots.js';
import { type RingSpace, Vm } from '../kernel/vm.js';
import { withTimeout } from '../platform/async-wait.js';
import { DEFAULT_PREEMPT_AFTER_MS } from './thread-timing.js';
import type { LogMode } from './log-collectors.js';
import { VcpuControlPlane } from './vcpu-control.js';
import type { SpawnVcpuWorker, VcpuThreadConfig, VcpuWorkerHandle } from './vcpu-worker-api.js';

/** Stop waiting for threads after this long without progress: they are wedged. */
export const CONTROL_TIMEOUT_MS = 15_000;
/** A device writes this often unless told otherwise (`--device-interval-us`). */
const DEFAULT_DEVICE_INTERVAL_US = 100;
/** How long a thread may take to end once told to terminate. */
const JOIN_TIMEOUT_MS = 5_000;
export const FIRST_SLOT_ID = 1;
/** Data slots start at 1 GiB of guest physical memory, like dirty_log_test's top-of-memory slot. */
const FIRST_SLOT_GFN = (1 << 30) / PAGE_SIZE;

/** Reported times and rates keep three decimals (µs for a time in ms). */
const ROUND3_SCALE = 1000;

export function round3(x: number): number {
  return Math.round(x * ROUND3_SCALE) / ROUND3_SCALE;
}

export interface GuestVmConfig {
  readonly log: LogMode;
  readonly ringEntries: number;
  readonly ringWithBitmap: boolean;
  readonly initiallySet: boolean;
  readonly mutants: number;
  readonly memoryBytes: number;
  readonly memslots: number;
  readonly vcpus: number;
  /** Page counts of the memslots, instead of `memslots` equal parts of `memoryBytes`. */
  readonly slotPages?: readonly number[];
  /**
   * Pages of an SMRAM memslot in address space 1, right after the others (0 or absent: the VM
   * has no SMM). It takes the first memslot's id: ids are per address space, as in QEMU.
   */
  readonly smmPages?: number;
  /** Every vCPU's ring starts at this free-running index (Vm.presetRingIndex; ring VMs). */
  readonly ringStart?: number;
  /**
   * Enable the ring with the original KVM_CAP_DIRTY_LOG_RING instead of ..._ACQ_REL: the
   * pre-2022 orderings of the reset walk (they differ only under a weak memory model).
   */
  readonly ringCapOriginal?: boolean;
}

/** The page counts of the address-space-0 memslots. */
function ramSlotPages(config: GuestVmConfig): readonly number[] {
  if (config.slotPages !== undefined) return config.slotPages;
  const totalPages = config.memoryBytes / PAGE_SIZE;
  return Array.from({ length: config.memslots }, (_, i) => Math.floor(totalPages / config.memslots) + (i < totalPages % config.memslots ? 1 : 0));
}

/**
 * Where a run's rings go in userspace's address space (a WebAssembly harvester's linear memory,
 * VmOptions.ringSpace): asked once per VM with its vCPUs and ring size in bytes.
 */
export type RingSpaceFactory = (vcpus: number, ringBytes: number) => RingSpace;

/**
 * Create the VM: the logging capability first, then the memslots (equal parts of guest memory,
 * or `slotPages`, contiguous from 1 GiB, then SMRAM; with LOG_DIRTY_PAGES when `logDirty`),
 * then the vCPUs. The slots come back in that order, SMRAM last.
 */
export function buildGuestVm(config: GuestVmConfig, logDirty: boolean, ringSpace?: RingSpaceFactory): { vm: Vm; slots: Memslot[] } {
  const smmPages = config.smmPages ?? 0;
  const space = config.log === 'ring' ? ringSpace?.(config.vcpus, config.ringEntries * DIRTY_GFN_BYTES) : undefined;
  const vm = Vm.create({ mutants: kernelMutants(config.mutants), offerRingWithBitmap: config.ringWithBitmap, smm: smmPages > 0, ...(space && { ringSpace: space }) });
  if (config.log === 'ring') {
    vm.enableCap(config.ringCapOriginal === true ? KVM_CAP_DIRTY_LOG_RING : KVM_CAP_DIRTY_LOG_RING_ACQ_REL, config.ringEntries * DIRTY_GFN_BYTES);
    if (config.ringWithBitmap) vm.enableCap(KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP, 0);
  } else if (config.log === 'clear') {
    vm.enableCap(
      KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | (config.initiallySet ? KVM_DIRTY_LOG_INITIALLY_SET : 0),
    );
  }
  const slots: Memslot[] = [];
  let gfn = FIRST_SLOT_GFN;
  const place = (asId: number, id: number, pageCount: number): void => {
    vm.setUserMemoryRegion({
      slot: encodeSlot(asId, id),
      flags: logDirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
      guestPhysAddr: gfn * PAGE_SIZE,
      memorySize: pageCount * PAGE_SIZE,
    });
    slots.push(vm.memslots.findById(asId, id)!);
    gfn += pageCount;
  };
  ramSlotPages(config).forEach((pageCount, i) => place(0, FIRST_SLOT_ID + i, pageCount));
  if (smmPages > 0) place(SMM_AS_ID, FIRST_SLOT_ID, smmPages);
  for (let i = 0; i < config.vcpus; i++) {
    vm.createVcpu();
    if (config.log === 'ring' && (config.ringStart ?? 0) !== 0) vm.presetRingIndex(i, config.ringStart!);
  }
  return { vm, slots };
}

export interface FleetStart {
  readonly workload: WorkloadConfig;
  /** Per-vCPU additions to the thread configuration (store path, self-reap, throttle...). */
  readonly vcpuOptions?: (vcpuIndex: number) => Partial<VcpuThreadConfig>;
  /** Pause between two writes of a DMA device, in microseconds. */
  readonly deviceIntervalUs?: number;
  /** The devices' page stream (default: the vCPUs' workload). */
  readonly deviceWorkload?: WorkloadConfig;
  /** A run's coverage buffer: vCPU i records into block 1 + i, then each device (block 0 is userspace's). */
  readonly coverage?: SharedArrayBuffer;
}

/** The worker threads of one guest, and userspace's handle on them. */
export class GuestFleet {
  readonly globals = new SharedBlock(GuestGlobalsLayout);
  readonly devices: SharedBlock<keyof typeof DeviceLayout.words, keyof typeof DeviceLayout.floats>[];
  readonly control: VcpuControlPlane;
  readonly workers: VcpuWorkerHandle[] = [];
  /** Other workers of the run (e.g. a migration's destination) joined and released on shutdown. */
  private readonly adopted: { readonly worker: VcpuWorkerHandle; readonly name: string }[] = [];

  constructor(
    readonly vm: Vm,
    readonly vcpuCount: number,
    deviceCount: number,
    private readonly spawn: SpawnVcpuWorker,
  ) {
    this.devices = Array.from({ length: deviceCount }, (_, j) => {
      const b = new SharedBlock(DeviceLayout);
      Atomics.store(b.i32, DeviceLayout.words.DEVICE_ID, j);
      return b;
    });
    this.control = new VcpuControlPlane(vm, vcpuCount, this.devices.map((d) => d.i32));
    this.control.watchWorkers(() => this.deadWorker());
  }

  /** The thread whose worker exited unasked ("vCPU i", "device j", an adopted worker's name), or null. */
  deadWorker(): string | null {
    for (let i = 0; i < this.workers.length; i++) {
      if (this.workers[i]!.failure !== null) return i < this.vcpuCount ? `vCPU ${i}` : `device ${i - this.vcpuCount}`;
    }
    for (const a of this.adopted) if (a.worker.failure !== null) return a.name;
    return null;
  }

  /** Spawn and start every vCPU and device thread, then wait until all of them have parked. */
  async start(opts: FleetStart): Promise<void> {
    const starts: Promise<void>[] = [];
    for (let i = 0; i < this.vcpuCount; i++) {
      const w = this.spawn(i);
      this.workers.push(w);
      const config: VcpuThreadConfig = {
        vm: this.vm.buffers(),
        vcpuIndex: i,
        vcpuCount: this.vcpuCount,
        globals: this.globals.buffer,
        workload: opts.workload,
        preemptAfterMs: DEFAULT_PREEMPT_AFTER_MS,
        ...(opts.coverage && { coverage: { buffer: opts.coverage, thread: 1 + i } }),
        ...opts.vcpuOptions?.(i),
      };
      starts.push(withTimeout(w.api.start(config), CONTROL_TIMEOUT_MS, `starting vCPU ${i}`));
    }
    this.devices.forEach((d, j) => {
      const w = this.spawn(this.vcpuCount + j);
      this.workers.push(w);
      starts.push(
        withTimeout(
          w.api.startDevice({
            vm: this.vm.buffers(),
            deviceIndex: j,
            device: d.buffer,
            globals: this.globals.buffer,
            workload: opts.deviceWorkload ?? opts.workload,
            writeIntervalUs: opts.deviceIntervalUs ?? DEFAULT_DEVICE_INTERVAL_US,
            ...(opts.coverage && { coverage: { buffer: opts.coverage, thread: 1 + this.vcpuCount + j } }),
          }),
          CONTROL_TIMEOUT_MS,
          `starting device ${j}`,
        ),
      );
    });
    await Promise.all(starts);
    await this.control.waitAllParked(CONTROL_TIMEOUT_MS);
  }

  /** Join and release `worker` together with the fleet's own threads on shutdown; `name` names its thread when it dies. */
  adopt(worker: VcpuWorkerHandle, name: string): void {
    this.adopted.push({ worker, name });
  }

  /** Sum of one vCPU counter over every vCPU. */
  sumVcpu(field: keyof typeof VcpuLayout.floats): number {
    let s = 0;
    for (let i = 0; i < this.vcpuCount; i++) s += this.vm.vcpuBlock(i).f64[VcpuLayout.floats[field]]!;
    return s;
  }

  /** Largest value of one vCPU counter. */
  maxVcpu(field: keyof typeof VcpuLayout.floats): number {
    let m = 0;
    for (let i = 0; i < this.vcpuCount; i++) m = Math.max(m, this.vm.vcpuBlock(i).f64[VcpuLayout.floats[field]]!);
    return m;
  }

  /** Sum of one device counter over every device. */
  sumDevice(field: keyof typeof DeviceLayout.floats): number {
    let s = 0;
    for (const d of this.devices) s += d.f64[DeviceLayout.floats[field]]!;
    return s;
  }

  /** The first crash a worker reported, if any (for error messages). */
  firstFailure(): string | null {
    for (const w of [...this.workers, ...this.adopted.map((a) => a.worker)]) if (w.failure !== null) return w.failure;
    return null;
  }

  /**
   * Terminate every thread, join them (bounded) and release the workers. Returns the first
   * error a thread ended with, or null.
   */
  async shutdown(): Promise<string | null> {
    this.control.terminateAll();
    let error: string | null = null;
    await Promise.all(
      [...this.workers, ...this.adopted.map((a) => a.worker)].map(async (w, i) => {
        try {
          const err = await withTimeout(w.api.join(), JOIN_TIMEOUT_MS, `joining worker ${i}`);
          if (err && error === null) error = `worker ${i}: ${err}`;
        } catch (e) {
          if (error === null) error = e instanceof Error ? e.message : String(e);
        } finally {
          await w.terminate();
        }
      }),
    );
    return error;
  }
}

/** A message for an exception caught while a fleet ran, with the first worker crash if any. */
export function describeFailure(e: unknown, fleet: GuestFleet): string {
  let msg = e instanceof Error ? e.message : String(e);
  const failure = fleet.firstFailure();
  if (failure !== null) msg += `; worker: ${failure}`;
  return msg;
}
