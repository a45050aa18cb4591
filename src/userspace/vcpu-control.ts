/**
 * Userspace's handle on its vCPU threads, through shared words only: run, pause (kick and
 * park), wake a stalled thread, terminate, and wait on the doorbell the threads ring whenever
 * their state changes. Nothing here blocks the thread: waits are asynchronous, so the same
 * code runs on a browser main thread.
 */
import { VCPU_STATE_NAMES, VcpuControl, VcpuLayout, VcpuRequest, VcpuState, VmLayout } from '../abi/layout.js';
import type { Vm } from '../kernel/vm.js';
import { TimeoutError, waitAsyncWhileEqual } from '../platform/async-wait.js';

const W = VcpuLayout.words;

export class VcpuControlPlane {
  private readonly vmWords: Int32Array;

  constructor(
    readonly vm: Vm,
    readonly vcpuCount: number,
  ) {
    this.vmWords = vm.block.i32;
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
  }

  /** Kick the vCPU out of guest mode and have its thread park. */
  pause(i: number): void {
    Atomics.store(this.words(i), W.CONTROL, VcpuControl.PAUSE);
    this.vm.kickVcpu(i);
    this.wake(i);
  }

  pauseAll(): void {
    for (let i = 0; i < this.vcpuCount; i++) this.pause(i);
  }

  terminateAll(): void {
    for (let i = 0; i < this.vcpuCount; i++) {
      Atomics.store(this.words(i), W.CONTROL, VcpuControl.TERMINATE);
      this.vm.kickVcpu(i);
      this.wake(i);
    }
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
      await this.waitDoorbell(seen, Math.min(left, 20));
    }
  }

  allIn(...states: number[]): boolean {
    for (let i = 0; i < this.vcpuCount; i++) if (!states.includes(this.state(i))) return false;
    return true;
  }

  anyDead(): number {
    for (let i = 0; i < this.vcpuCount; i++) if (this.state(i) === VcpuState.DEAD) return i;
    return -1;
  }

  /** Wait until every thread has parked; a dead thread is an error. */
  async waitAllParked(timeoutMs: number): Promise<void> {
    await this.waitUntil(
      () => {
        const dead = this.anyDead();
        if (dead >= 0) throw new Error(`vCPU ${dead} thread died`);
        return this.allIn(VcpuState.PARKED);
      },
      timeoutMs,
      () => `waiting for vCPUs to park (states: ${this.describe()})`,
    );
  }

  describe(): string {
    const out: string[] = [];
    for (let i = 0; i < this.vcpuCount; i++) out.push(`${i}:${this.stateName(i)}`);
    return out.join(' ');
  }
}
