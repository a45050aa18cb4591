/** What a caller of `runDirtyLog` may plug into a run: thread spawning, progress, test and stress hooks. */
import type { Memslot } from '../kernel/memslots.js';
import type { StepHookSpec } from '../kernel/step-hook.js';
import type { Vm } from '../kernel/vm.js';
import type { RingSpaceFactory } from '../userspace/guest-fleet.js';
import type { LogCollector } from '../userspace/log-collectors.js';
import type { SharedReaper } from '../userspace/self-reaper.js';
import type { SpawnVcpuWorker } from '../userspace/vcpu-worker-api.js';
import type { IterationReport } from './iteration-report.js';
import type { RunConfig } from './run-config.js';

export interface RunHooks {
  readonly spawn: SpawnVcpuWorker;
  /** Called once with the validated configuration, before any thread starts. */
  readonly onStart?: (config: RunConfig) => void;
  readonly onIteration?: (report: IterationReport) => void;
  /** Asked before each iteration: true ends the run there (Ctrl-C); the summary says it was interrupted. */
  readonly shouldStop?: () => boolean;
  /**
   * Test hook: during this iteration, turn LOG_DIRTY_PAGES off on this memslot id a third of
   * the way through and on again at two thirds (the slot is not judged in that iteration).
   */
  readonly toggleLog?: { readonly slotId: number; readonly iteration: number };
  // --- The stress harness's hooks; a plain run uses none of them. ---
  /** Random delays at the step points of every vCPU worker (real threads, free-running). */
  readonly vcpuStepHook?: StepHookSpec;
  /**
   * A harvester of the stress harness's (harvester-variants.ts) or a user's instead of the
   * mode's collector. `reaper`: the run's shared reaper when config.selfReap is on; a collector
   * that drains it (LogCollector.selfReaper) has the vCPUs reap their own rings on exit 31,
   * any other collector gets the hand-off design.
   */
  readonly createCollector?: (vm: Vm, vcpus: number, slots: readonly Memslot[], config: RunConfig, reaper: SharedReaper | null) => LogCollector;
  /** Where the rings go: a WebAssembly harvester's linear memory (HarvesterDefinition.ringSpace). */
  readonly ringSpace?: RingSpaceFactory;
  /** Asked at every poll of an iteration: force a collection now, and/or kick a vCPU (−1: none). */
  readonly onPoll?: (iteration: number) => PollAction | null;
  /**
   * Coverage recording (kernel/coverage.ts): block 0 is the caller's thread (which installs it
   * itself), 1 + i vCPU i's, then one per DMA device.
   */
  readonly coverage?: SharedArrayBuffer;
}

/** What the stress harness's `onPoll` asks for (harvest timing jitter, kicks at random moments). */
export interface PollAction {
  readonly harvest: boolean;
  readonly kick: number;
}
