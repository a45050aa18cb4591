/**
 * A DMA device's thread, in a worker: park until told to run, then write guest pages at a
 * steady pace (one write, then a short blocking wait on its WAKE word, so a pause interrupts
 * the pacing at once). Its page choice is a seeded workload stream of its own.
 */
import { DeviceLayout } from './device-layout.js';
import { GuestGlobalsLayout } from '../guest/guest-memory.js';
import { SharedBlock } from '../abi/layout.js';
import { VcpuControl, VcpuState } from '../kernel/vcpu-layout.js';
import { VmLayout } from '../kernel/vm-layout.js';
import { Instruction } from '../guest/instruction.js';
import { WorkloadProgram } from '../guest/workloads.js';
import { clearCoverage, installCoverage } from '../kernel/coverage.js';
import { DmaDevice } from '../kernel/device.js';
import { ringDoorbell } from '../kernel/sync.js';
import { Vm } from '../kernel/vm.js';
import { waitAsyncWhileEqual, yieldToEventLoop } from '../platform/async-wait.js';
import { US_PER_MS } from '../base/units.js';
import { DEFAULT_PREEMPT_AFTER_MS, IDLE_WAIT_SLICE_MS } from './thread-timing.js';
import type { DeviceThreadConfig } from './vcpu-worker-api.js';

const W = DeviceLayout.words;
const F = DeviceLayout.floats;
/** Workload streams of devices are numbered after any vCPU's. */
const DEVICE_STREAM_BASE = 0x1000;

export class DeviceThread {
  readonly vm: Vm;
  readonly device: DmaDevice;
  private readonly block: SharedBlock<keyof typeof DeviceLayout.words, keyof typeof DeviceLayout.floats>;
  private readonly program: WorkloadProgram;
  private readonly insn = new Instruction();
  private readonly intervalMs: number;
  error: string | null = null;

  constructor(config: DeviceThreadConfig) {
    if (config.coverage) installCoverage(config.coverage.buffer, config.coverage.thread);
    else clearCoverage();
    this.vm = Vm.attach(config.vm);
    this.block = new SharedBlock(DeviceLayout, config.device);
    this.device = new DmaDevice(this.vm, config.deviceIndex);
    const globals = new SharedBlock(GuestGlobalsLayout, config.globals);
    // A device writes RAM only: it has no SMM to reach SMRAM from.
    const { smm: _smm, ...ram } = config.workload;
    this.program = new WorkloadProgram(
      { ...ram, burstPages: 1, burstPercent: 0 },
      DEVICE_STREAM_BASE + config.deviceIndex,
      1,
      globals.i32,
    );
    this.intervalMs = config.writeIntervalUs / US_PER_MS;
  }

  private setState(state: number): void {
    Atomics.store(this.block.i32, W.STATE, state);
    ringDoorbell(this.vm.block.i32, VmLayout.words.DOORBELL);
  }

  private publish(): void {
    const f = this.block.f64;
    f[F.WRITES] = this.device.writes;
    f[F.LOGGED] = this.device.logged;
    f[F.LOST] = this.device.lost;
  }

  async main(): Promise<void> {
    const w = this.block.i32;
    try {
      for (;;) {
        const control = Atomics.load(w, W.CONTROL);
        if (control === VcpuControl.TERMINATE) break;
        if (control === VcpuControl.PAUSE) {
          const seq = Atomics.load(w, W.WAKE);
          this.publish();
          this.setState(VcpuState.PARKED);
          if (Atomics.load(w, W.CONTROL) !== VcpuControl.PAUSE) continue;
          await waitAsyncWhileEqual(w, W.WAKE, seq, IDLE_WAIT_SLICE_MS);
          continue;
        }
        if (Atomics.load(w, W.STATE) !== VcpuState.RUNNING) this.setState(VcpuState.RUNNING);
        const t0 = performance.now();
        // Write for up to the preemption budget, then give the message port a turn.
        while (Atomics.load(w, W.CONTROL) === VcpuControl.RUN && performance.now() - t0 < DEFAULT_PREEMPT_AFTER_MS) {
          this.program.decode(this.insn);
          if (!this.device.write(this.insn.gfns[0]!, this.insn.value)) {
            throw new Error(`device ${this.device.deviceId}: write outside every memslot`);
          }
          const seq = Atomics.load(w, W.WAKE);
          if (Atomics.load(w, W.CONTROL) !== VcpuControl.RUN) break;
          Atomics.wait(w, W.WAKE, seq, this.intervalMs);
        }
        this.publish();
        await yieldToEventLoop();
      }
    } catch (e) {
      this.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    } finally {
      this.publish();
      clearCoverage();
      this.setState(VcpuState.DEAD);
    }
  }
}
