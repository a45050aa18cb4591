/**
 * The control plane of a controlled participant worker (comlink, used only between runs: during
 * a run the worker is parked on the token and talks through shared memory alone).
 */
import type { Remote } from 'comlink';
import type { VmBuffers } from '../../kernel/vm.js';
import type { Roster } from './control-steps.js';
import type { HarvesterRunBuffers } from './harvester-run-buffers.js';
import type { ControlledScenario } from './scenario.js';
import type { UserspaceReport } from './userspace-report.js';

export interface ControlledRunConfig {
  /** 0 = userspace (the harvester), 1..vcpus = vCPU p − 1, then the roster's extras. */
  readonly participant: number;
  readonly roster: Roster;
  /** SchedulerTokenLayout + ParticipantLayout blocks (abi/layout.ts). */
  readonly token: SharedArrayBuffer;
  readonly vm: VmBuffers;
  /** GuestGlobalsLayout block (the guest's `iteration`). */
  readonly globals: SharedArrayBuffer;
  /** UserspaceSharedLayout block: the userspace threads' own words (reset requests). */
  readonly shared: SharedArrayBuffer;
  /** The weak memory model's shadow state (run-memory.ts), null under `sc`. */
  readonly wmm: SharedArrayBuffer | null;
  /** The page ledger (ledger-layout.ts): pages handed on by userspace, the vCPUs' TLB contents. */
  readonly ledger: SharedArrayBuffer;
  readonly scenario: ControlledScenario;
  /** The run's seed, for the oracle's reports. */
  readonly seed: number;
  /** The run's known bugs (the kernel's are in the VM already; userspace takes its own share). */
  readonly mutants: number;
  /** The run's coverage buffer (kernel/coverage.ts): block p is participant p's. */
  readonly coverage: SharedArrayBuffer;
  /** A user harvester on threads of its own (H0, ...): what they share with userspace. */
  readonly harvesterThreads?: HarvesterRunBuffers | null;
}

export interface ParticipantResult {
  readonly participant: number;
  readonly error: string | null;
  /** Userspace's findings (participant 0 only). */
  readonly userspace: UserspaceReport | null;
}

export interface ControlledWorkerApi {
  /** Run one participant's program to its end, parking at every step point. */
  run(config: ControlledRunConfig): Promise<ParticipantResult>;
  ping(): Promise<string>;
}

export interface ControlledWorkerHandle {
  readonly api: Remote<ControlledWorkerApi>;
  /** Set when the worker crashed or exited unexpectedly. */
  readonly failure: string | null;
  terminate(): Promise<void>;
}

export type SpawnControlledWorker = (index: number) => ControlledWorkerHandle;
