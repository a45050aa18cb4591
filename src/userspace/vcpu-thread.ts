/**
 * The userspace side of one vCPU thread — what QEMU's vCPU thread does around KVM_RUN — running
 * in a worker: park until told to run, call KVM_RUN, and react to its exits. On exit 31 the
 * thread really stalls (Atomics.wait, in bounded slices) until userspace has harvested and
 * reset and wakes it; it then re-enters, and exits again at once if the ring is still full.
 */
import {
  EMU_EXIT_PREEMPTED,
  EMU_EXIT_TRACK_RING_FULL,
  KVM_EXIT_DIRTY_RING_FULL,
  KVM_EXIT_HLT,
  KVM_EXIT_INTR,
  KVM_EXIT_MMIO,
} from '../abi/constants.js';
import { GuestGlobalsLayout } from '../guest/guest-memory.js';
import { SharedBlock } from '../abi/layout.js';
import { VcpuControl, VcpuLayout, VcpuState } from '../kernel/vcpu-layout.js';
import { VmLayout } from '../kernel/vm-layout.js';
import { WorkloadProgram } from '../guest/workloads.js';
import { clearCoverage, installCoverage } from '../kernel/coverage.js';
import { installStepHookSpec } from '../kernel/step-hook.js';
import { now } from '../base/clock.js';
import { ringDoorbell } from '../kernel/sync.js';
import { Vcpu } from '../kernel/vcpu.js';
import { Vm } from '../kernel/vm.js';
import { waitAsyncWhileEqual, yieldToEventLoop } from '../platform/async-wait.js';
import { NS_PER_MS } from '../base/units.js';
import { DEFAULT_PREEMPT_AFTER_MS, IDLE_WAIT_SLICE_MS, STALL_WAIT_SLICE_MS } from './thread-timing.js';
import { VcpuThrottle } from './migration/vcpu-throttle.js';
import { SharedReaper } from './self-reaper.js';
import { StallRecorder } from './stall-recorder.js';
import type { VcpuThreadConfig } from './vcpu-worker-api.js';

const W = VcpuLayout.words;
const F = VcpuLayout.floats;
/** Spin this many polls before blocking: most stalls end within microseconds of a reset. */
const STALL_SPIN_POLLS = 4000;

export class VcpuThread {
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  private readonly program: WorkloadProgram;
  private readonly w: Int32Array;
  private readonly vmWords: Int32Array;
  /** Set when the thread reaps its own ring on exit 31 (config.selfReap). */
  private readonly reaper: SharedReaper | null;
  private readonly stallRecorder: StallRecorder | null;
  /** now() of the last exit 31 until the thread is back in KVM_RUN; -1 otherwise. */
  private stallStart = -1;
  /** Dirty-limit: sleep after each ring-full exit (config.throttle; migration only). */
  private readonly throttle: VcpuThrottle | null;
  /** The worker's message-port budget: yield to the event loop at least this often (ms). */
  private readonly preemptAfterMs: number;
  /** now() when the thread last yielded to the event loop. */
  private lastYield = 0;
  error: string | null = null;

  constructor(config: VcpuThreadConfig) {
    // Coverage first: what this thread's VM records is decided as it attaches (reset-batch.ts).
    if (config.coverage) installCoverage(config.coverage.buffer, config.coverage.thread);
    else clearCoverage();
    this.vm = Vm.attach(config.vm);
    this.preemptAfterMs = config.preemptAfterMs ?? DEFAULT_PREEMPT_AFTER_MS;
    this.vcpu = new Vcpu(this.vm, config.vcpuIndex, {
      emulateAllStores: config.emulateAllStores ?? false,
      preemptAfterMs: this.preemptAfterMs,
    });
    const globals = new SharedBlock(GuestGlobalsLayout, config.globals);
    this.program = new WorkloadProgram(config.workload, config.vcpuIndex, config.vcpuCount, globals.i32);
    this.w = this.vcpu.block.i32;
    this.vmWords = this.vm.block.i32;
    this.reaper = config.selfReap ? new SharedReaper(this.vm, config.selfReap) : null;
    this.stallRecorder = config.stallSamples ? new StallRecorder(config.stallSamples) : null;
    this.throttle = config.throttle ? new VcpuThrottle(config.throttle, this.w) : null;
    // A step hook from the caller (the stress harness's random delays), or none: the hook is
    // per thread, and a reused worker must not keep an earlier run's.
    installStepHookSpec(config.stepHook);
  }

  private setState(state: number): void {
    Atomics.store(this.w, W.STATE, state);
    ringDoorbell(this.vmWords, VmLayout.words.DOORBELL);
  }

  /** The thread's loop; resolves when told to terminate, rejects never (errors are recorded). */
  async main(): Promise<void> {
    const w = this.w;
    this.lastYield = now();
    try {
      for (;;) {
        const control = Atomics.load(w, W.CONTROL);
        if (control === VcpuControl.TERMINATE) break;
        if (control === VcpuControl.PAUSE) {
          this.stallStart = -1;
          const seq = Atomics.load(w, W.WAKE);
          this.setState(VcpuState.PARKED);
          if (Atomics.load(w, W.CONTROL) !== VcpuControl.PAUSE) continue;
          // Asynchronous so the worker keeps answering control messages while parked.
          await waitAsyncWhileEqual(w, W.WAKE, seq, IDLE_WAIT_SLICE_MS);
          continue;
        }
        if (Atomics.load(w, W.STATE) !== VcpuState.RUNNING) this.setState(VcpuState.RUNNING);
        if (this.stallStart >= 0) {
          this.stallRecorder?.record((now() - this.stallStart) * NS_PER_MS);
          this.stallStart = -1;
        }
        const exit = this.vcpu.run(this.program);
        switch (exit) {
          case KVM_EXIT_DIRTY_RING_FULL: {
            this.stallStart = now();
            let blocked = false;
            if (this.reaper) this.reapOwnRing();
            else blocked = this.stall();
            if (this.throttle) {
              // Dirty-limit: QEMU's vCPU thread sleeps after the reap, before re-entering.
              this.setState(VcpuState.RUNNING);
              this.throttle.sleepAfterRingFull();
            }
            // Answer the message port on the way back in: a thread that keeps filling its ring
            // never runs long enough to reach its preemption point (Vcpu.run restarts that
            // timer at each entry). A thread that blocked in its stall has waited long anyway,
            // so it yields; otherwise (a self-reap, or a stall that userspace ended while the
            // thread still spun) yielding on every exit 31 would add a few µs to each — the
            // stall bench measured 2.7 µs for a setImmediate here — so it yields once per
            // preemption budget.
            if (blocked || this.preemptAfterMs <= 0 || now() - this.lastYield >= this.preemptAfterMs) {
              await this.yield();
            }
            break;
          }
          case EMU_EXIT_TRACK_RING_FULL: // page write-tracking: the notification ring is soft-full
            // Userspace drains it, then wakes the thread; answer the message port on the way
            // back in (e.g. a page-track notifier being registered while the vCPUs run). Not
            // recorded by the StallRecorder: that one samples exit-31 stalls only.
            this.stall();
            await this.yield();
            break;
          case EMU_EXIT_PREEMPTED:
            await this.yield();
            break;
          case KVM_EXIT_INTR:
            break; // a kick: the loop re-reads CONTROL
          case KVM_EXIT_HLT: {
            // The guest is idle until userspace changes something (resume into a new
            // iteration, pause, terminate): all of which bump WAKE.
            const seq = Atomics.load(w, W.WAKE);
            this.setState(VcpuState.HALTED);
            while (Atomics.load(w, W.WAKE) === seq && Atomics.load(w, W.CONTROL) === VcpuControl.RUN) {
              await waitAsyncWhileEqual(w, W.WAKE, seq, IDLE_WAIT_SLICE_MS);
            }
            break;
          }
          case KVM_EXIT_MMIO:
            throw new Error(`vCPU ${this.vcpu.index}: guest access outside every memslot (KVM_EXIT_MMIO)`);
          default:
            throw new Error(`vCPU ${this.vcpu.index}: unexpected exit reason ${exit}`);
        }
      }
    } catch (e) {
      this.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    } finally {
      this.vcpu.publishStats();
      clearCoverage();
      this.setState(VcpuState.DEAD);
    }
  }

  private async yield(): Promise<void> {
    await yieldToEventLoop();
    this.lastYield = now();
  }

  /**
   * QEMU's reaction to exit 31: harvest this vCPU's ring and reset, here, under the reaper
   * lock; the time counts as stall time.
   */
  private reapOwnRing(): void {
    const t0 = now();
    this.reaper!.reap(this.vcpu.index);
    const ns = (now() - t0) * NS_PER_MS;
    const f = this.vcpu.block.f64;
    f[F.STALL_NS] = f[F.STALL_NS]! + ns;
    if (ns > f[F.STALL_MAX_NS]!) f[F.STALL_MAX_NS] = ns;
  }

  /**
   * Blocked after exit 31 until userspace bumps WAKE (after its reset) or stops wanting RUN.
   * Returns whether the thread had to block (past its spin) rather than seeing the wake-up spinning.
   */
  private stall(): boolean {
    const w = this.w;
    const seq = Atomics.load(w, W.WAKE);
    this.setState(VcpuState.RING_FULL_STALL);
    const t0 = now();
    let polls = 0;
    // Userspace stores CONTROL before bumping WAKE, so a pause that came before `seq` was read
    // is seen here through CONTROL, and one that came after through WAKE.
    while (Atomics.load(w, W.WAKE) === seq && Atomics.load(w, W.CONTROL) === VcpuControl.RUN) {
      if (polls < STALL_SPIN_POLLS) {
        polls++;
        continue;
      }
      // Bounded slices: a TERMINATE also bumps WAKE, so this never outlives the run.
      Atomics.wait(w, W.WAKE, seq, STALL_WAIT_SLICE_MS);
    }
    const stallNs = (now() - t0) * NS_PER_MS;
    const f = this.vcpu.block.f64;
    f[F.STALL_NS] = f[F.STALL_NS]! + stallNs;
    if (stallNs > f[F.STALL_MAX_NS]!) f[F.STALL_MAX_NS] = stallNs;
    return polls >= STALL_SPIN_POLLS;
  }
}
