/**
 * The heart of one iteration, while every writer runs: userspace polls the guest the way
 * dirty_log_test's host thread does. Each poll collects when a collection is due — on the first
 * pass, whenever a vCPU stalls on a full ring (then releases it), periodically, or when the
 * stress harness asks — drives the test and page-tracking hooks, checks that the guest makes
 * progress, and decides whether the iteration may end.
 */
import { now } from '../base/clock.js';
import type { Vm } from '../kernel/vm.js';
import { VcpuState } from '../kernel/vcpu-layout.js';
import { yieldToEventLoop } from '../platform/async-wait.js';
import { CONTROL_TIMEOUT_MS } from '../userspace/guest-fleet.js';
import type { VcpuControlPlane } from '../userspace/vcpu-control.js';
import type { LogToggle } from './log-toggle.js';
import type { PageTrackRun } from './page-track-run.js';
import type { RunConfig } from './run-config.js';
import type { PollAction } from './run-hooks.js';
import type { RingWedgeDetector } from './wedge-detector.js';

/** dirty_log_test's floor: an iteration sees at least this many guest writes, whatever its interval. */
const MIN_WRITES_PER_ITERATION = 256;
/** The loop wakes at every doorbell ring (a thread changed state) and at least this often. */
const POLL_MS = 1;

/** The parts of a run an iteration's poll loop drives. */
export interface PolledRun {
  readonly config: RunConfig;
  readonly vm: Vm;
  readonly control: VcpuControlPlane;
  readonly wedgeDetector: RingWedgeDetector;
  readonly track: PageTrackRun | null;
  readonly onPoll: ((iteration: number) => PollAction | null) | undefined;
  /** Guest writes (vCPU instructions) so far, summed over every vCPU. */
  guestWrites(): number;
  /** One collection while the writers run; `ringFull`: the stalled vCPUs it will free. */
  collect(final: boolean, ringFull?: readonly number[]): void;
}

export class IterationLoop {
  private lastHarvest: number;
  private lastProgress: number;
  private lastWrites: number;
  private firstPass = true;

  constructor(
    private readonly run: PolledRun,
    private readonly iteration: number,
    /** When the iteration began, and the guest writes made until then. */
    private readonly startedAt: number,
    private readonly writesAtStart: number,
    private readonly toggle: LogToggle | null,
  ) {
    this.lastHarvest = now();
    this.lastProgress = now();
    this.lastWrites = writesAtStart;
  }

  /** Poll until the iteration may end; the writers still run when this returns. */
  async runUntilDone(): Promise<void> {
    const { control } = this.run;
    for (;;) {
      const bell = control.doorbell();
      if (this.poll()) return;
      // While a page-track (un)registration is in progress it needs this thread's event loop
      // (worker replies, waitAsync wake-ups); waitDoorbell resolves without yielding to it
      // when the doorbell has already moved.
      if (this.run.track?.busy) await yieldToEventLoop();
      await control.waitDoorbell(bell, POLL_MS);
    }
  }

  /** One look at the guest; returns whether the iteration may end. */
  private poll(): boolean {
    const { config } = this.run;
    const stalled = this.stalledVcpus();
    this.checkThreadsAlive();
    const t = now();
    const action = this.run.onPoll?.(this.iteration) ?? null;
    if (action !== null && action.kick >= 0 && action.kick < config.vcpus) this.run.vm.kickVcpu(action.kick);
    if (this.firstPass || stalled.length > 0 || t - this.lastHarvest >= config.harvestIntervalMs || action?.harvest === true) {
      this.harvestAndRelease(stalled);
      this.lastHarvest = t;
      this.firstPass = false;
    }
    const fraction = (t - this.startedAt) / config.intervalMs;
    this.toggle?.step(fraction);
    // Page write-tracking's work while the vCPUs run (it never blocks this loop).
    this.run.track?.step(fraction);
    const writes = this.checkProgress(t);
    return this.mayEnd(t, writes);
  }

  private stalledVcpus(): number[] {
    const stalled: number[] = [];
    for (let i = 0; i < this.run.config.vcpus; i++) if (this.run.control.state(i) === VcpuState.RING_FULL_STALL) stalled.push(i);
    return stalled;
  }

  private checkThreadsAlive(): void {
    const dead = this.run.control.anyDeadThread();
    if (dead !== null) throw new Error(`${dead} thread died in iteration ${this.iteration}`);
  }

  /**
   * Harvest + reset (and copy) first, then release the stalled threads: QEMU's reaction to
   * exit 31. A vCPU whose ring a whole collection cannot drain is wedged (wedge-detector.ts).
   */
  private harvestAndRelease(stalled: readonly number[]): void {
    const { vm, control, wedgeDetector } = this.run;
    const ring = this.run.config.log === 'ring';
    if (ring) wedgeDetector.arm(vm, stalled);
    this.run.collect(false, stalled);
    const wedged = ring ? wedgeDetector.check(vm, (i) => control.state(i) === VcpuState.RING_FULL_STALL) : null;
    if (wedged !== null) throw new Error(`${wedged} (iteration ${this.iteration})`);
    for (const i of stalled) control.wakeStalled(i);
  }

  /** Guest writes so far; throws when they have not moved for too long and a vCPU should be writing. */
  private checkProgress(t: number): number {
    const { control } = this.run;
    const writes = this.run.guestWrites();
    if (writes !== this.lastWrites) {
      this.lastWrites = writes;
      this.lastProgress = t;
    } else if (t - this.lastProgress > CONTROL_TIMEOUT_MS && !control.allVcpusIn(VcpuState.HALTED)) {
      throw new Error(`no guest progress for ${CONTROL_TIMEOUT_MS} ms in iteration ${this.iteration} (${control.describe()})`);
    }
    return writes;
  }

  private mayEnd(t: number, writes: number): boolean {
    const { config, control, track } = this.run;
    if (!(this.toggle?.done ?? true) || !(track?.iterationDone ?? true)) return false;
    // A fixed amount of work: the iteration ends when every vCPU has halted.
    if (config.writesPerIteration > 0) return control.allVcpusIn(VcpuState.HALTED);
    return t - this.startedAt >= config.intervalMs && writes - this.writesAtStart >= MIN_WRITES_PER_ITERATION;
  }
}
