/**
 * Userspace's handle on its vCPU threads, through shared words only: run, pause (kick and
 * park), wake a stalled thread, terminate, and wait on the doorbell the threads ring whenever
 * their state changes. Nothing here blocks the thread: waits are asynchronous, so the same
 * code runs on a browser main thread.
 */
import { DeviceLayout } from './device-layout.js';
import { VCPU_STATE_NAMES, VcpuControl, VcpuLayout, VcpuRequest, VcpuState } from '../kernel/vcpu-layout.js';
import { VmLayout } from '../kernel/vm-layout.js';
import type { Vm } from '../kernel/vm.js';
import { TimeoutError, waitAsyncWhileEqual } from '../platform/async-wait.js';
import { USERSPACE_WAIT_SLICE_MS } from './thread-timing.js';

const W = VcpuLayout.words;
const D = DeviceLayout.words;

export class VcpuControlPlane {
  private readonly vmWords: Int32Array;

  constructor(
    readonly vm: Vm,
    readonly vcpuCount: number,
    /** DeviceLayout blocks of the DMA device threads, driven like vCPUs (without kicks). */
    readonly devices: readonly Int32Array[] = [],
  ) {
    this.vmWords = vm.block.i32;
  }

  deviceState(j: number): number {
    return Atomics.load(this.devices[j]!, D.STATE);
  }

  private setDeviceControl(j: number, control: number): void {
    const w = this.devices[j]!;
    Atomics.store(w, D.CONTROL, control);
    Atomics.add(w, D.WAKE, 1);
    Atomics.notify(w, D.WAKE);
  }

  private words(i: number): Int32Array {
    return this.vm.vcpuBlock(i).i32;
  }

  state(i: number): number {
    return Atomics.load(this.words(i), W.STATE);
  }

  stateName(i: number): string {
    return VCPU_STATE_NAMES[this.state(i)] ?? `state ${this.state(i)}`;
  }

  private wake(i: number): void {
    const w = this.words(i);
    Atomics.add(w, W.WAKE, 1);
    Atomics.notify(w, W.WAKE);
  }

  /** Let the thread run (enter KVM_RUN). A kick left over from an earlier pause is dropped. */
  resume(i: number): void {
    const w = this.words(i);
    Atomics.and(w, W.REQUESTS, ~VcpuRequest.KICK);
    Atomics.store(w, W.CONTROL, VcpuControl.RUN);
    this.wake(i);
  }

  resumeAll(): void {
    for (let i = 0; i < this.vcpuCount; i++) this.resume(i);
    for (let j = 0; j < this.devices.length; j++) this.setDeviceControl(j, VcpuControl.RUN);
  }

  /** Kick the vCPU out of guest mode and have its thread park. */
  pause(i: number): void {
    Atomics.store(this.words(i), W.CONTROL, VcpuControl.PAUSE);
    this.vm.kickVcpu(i);
    this.wake(i);
  }

  pauseAll(): void {
    for (let i = 0; i < this.vcpuCount; i++) this.pause(i);
    for (let j = 0; j < this.devices.length; j++) this.setDeviceControl(j, VcpuControl.PAUSE);
  }

  terminateAll(): void {
    for (let i = 0; i < this.vcpuCount; i++) {
      Atomics.store(this.words(i), W.CONTROL, VcpuControl.TERMINATE);
      this.vm.kickVcpu(i);
      this.wake(i);
    }
    for (let j = 0; j < this.devices.length; j++) this.setDeviceControl(j, VcpuControl.TERMINATE);
  }

  /** Release a thread stalled on exit 31 (after userspace has harvested and reset). */
  wakeStalled(i: number): void {
    this.wake(i);
  }

  doorbell(): number {
    return Atomics.load(this.vmWords, VmLayout.words.DOORBELL);
  }

  /** Wait until the doorbell moves past `seen`, at most `timeoutMs`. */
  async waitDoorbell(seen: number, timeoutMs: number): Promise<void> {
    await waitAsyncWhileEqual(this.vmWords, VmLayout.words.DOORBELL, seen, timeoutMs);
  }

  /** Wait until `done()` holds, re-checking at every doorbell; throws after `timeoutMs`. */
  async waitUntil(done: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.doorbell();
      if (done()) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(typeof what === 'string' ? what : what(), timeoutMs);
      await this.waitDoorbell(seen, Math.min(left, USERSPACE_WAIT_SLICE_MS));
    }
  }

  /** Whether every vCPU and device thread is in one of `states`. */
  allIn(...states: number[]): boolean {
    for (let i = 0; i < this.vcpuCount; i++) if (!states.includes(this.state(i))) return false;
    for (let j = 0; j < this.devices.length; j++) if (!states.includes(this.deviceState(j))) return false;
    return true;
  }

  allVcpusIn(...states: number[]): boolean {
    for (let i = 0; i < this.vcpuCount; i++) if (!states.includes(this.state(i))) return false;
    return true;
  }

  /**
   * A dead thread: "vCPU i" or "device j" (or what the worker probe names), or null. A thread
   * that fails in its own code says so in its state; one whose worker is gone (killed, out of
   * memory) never writes DEAD — only its host saw it exit — so the probe asks the host.
   */
  anyDeadThread(): string | null {
    for (let i = 0; i < this.vcpuCount; i++) if (this.state(i) === VcpuState.DEAD) return `vCPU ${i}`;
    for (let j = 0; j < this.devices.length; j++) if (this.deviceState(j) === VcpuState.DEAD) return `device ${j}`;
    return this.deadWorker();
  }

  /** Names a thread whose worker has exited unasked (set by the fleet that hosts the workers). */
  watchWorkers(probe: () => string | null): void {
    this.deadWorker = probe;
  }

  private deadWorker: () => string | null = () => null;

  /**
   * Userspace's reaction to vCPUs stalled on exit 31: when any is, `collect` (harvest + reset)
   * once, then release every stalled one. Returns whether anything was stalled.
   */
  releaseRingFullStalls(collect: () => void): boolean {
    let stalled = false;
    for (let i = 0; i < this.vcpuCount; i++) if (this.state(i) === VcpuState.RING_FULL_STALL) stalled = true;
    if (!stalled) return false;
    collect();
    for (let i = 0; i < this.vcpuCount; i++) if (this.state(i) === VcpuState.RING_FULL_STALL) this.wakeStalled(i);
    return true;
  }

  /** Wait until every thread has parked; a dead thread is an error. */
  async waitAllParked(timeoutMs: number): Promise<void> {
    await this.waitUntil(
      () => {
        const dead = this.anyDeadThread();
        if (dead !== null) throw new Error(`${dead} thread died`);
        return this.allIn(VcpuState.PARKED);
      },
      timeoutMs,
      () => `waiting for vCPUs to park (states: ${this.describe()})`,
    );
  }

  describe(): string {
    const out: string[] = [];
    for (let i = 0; i < this.vcpuCount; i++) out.push(`${i}:${this.stateName(i)}`);
    for (let j = 0; j < this.devices.length; j++) out.push(`dev${j}:${VCPU_STATE_NAMES[this.deviceState(j)] ?? '?'}`);
    return out.join(' ');
  }
}
