/**
 * The body of a controlled participant worker: attach to the run's VM, park on the token at
 * every step hook (the kernel's and the participant's own), run userspace's program, a vCPU's,
 * or an extra userspace thread's (a kind registered below). Under a weak memory model the
 * worker installs the model in its thread first, and every park also carries the run's
 * control-word synchronization (memory-sync.ts).
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { SharedBlock } from '../../abi/layout.js';
import { clearCoverage, installCoverage } from '../../kernel/coverage.js';
import { clearStepHook, installStepHook } from '../../kernel/step-hook.js';
import { Vm } from '../../kernel/vm.js';
import { ControlStep, USERSPACE_PARTICIPANT } from './control-steps.js';
import type { ParticipantMemorySync } from './memory-sync.js';
import type { ControlledRunConfig, ControlledWorkerApi, ParticipantResult } from './participant-api.js';
import { runResetThread } from './reset-thread.js';
import { runControlledHarvesterThread } from './harvester-thread-participant.js';
import { MAX_HARVESTER_THREADS } from '../../harvester/contract.js';
import { installRunMemory, uninstallRunMemory } from './run-memory.js';
import { ParticipantToken, RunAborted } from './token.js';
import { runUserspaceParticipant } from './userspace-participant.js';
import { type UserspaceReport, emptyUserspaceReport } from './userspace-report.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';
import { harvesterAt } from '../harvester-source.js';
import { type Park, runVcpuParticipant } from './vcpu-participant.js';

/** What an extra userspace participant's program gets. */
export interface ExtraParticipantContext {
  readonly vm: Vm;
  readonly config: ControlledRunConfig;
  readonly globals: Int32Array;
  readonly shared: Int32Array;
  readonly park: Park;
}

const extraKinds = new Map<string, (ctx: ExtraParticipantContext) => void>();

/**
 * Make an extra userspace participant kind runnable in this worker (a roster names it). The
 * scheduler treats it like any participant: it parks at every step hook of the code it runs.
 */
export function registerExtraParticipant(kind: string, run: (ctx: ExtraParticipantContext) => void): void {
  extraKinds.set(kind, run);
}

registerExtraParticipant('resetter', (ctx) => runResetThread(ctx.vm, ctx.shared, ctx.park));
for (let t = 0; t < MAX_HARVESTER_THREADS; t++) {
  registerExtraParticipant(`harvester${t}`, (ctx) => runControlledHarvesterThread(ctx.vm, ctx.config, ctx.shared, ctx.park, t));
}

export function runParticipant(config: ControlledRunConfig): ParticipantResult {
  const token = new ParticipantToken(config.token, config.participant);
  const p = config.participant;
  let sync: ParticipantMemorySync | null = null;
  const park = (step: number, a: number, b: number): void => {
    sync?.beforePark();
    token.park(step, a, b);
    sync?.afterGrant(step);
  };
  const isUserspace = p === USERSPACE_PARTICIPANT;
  const report: UserspaceReport | null = isUserspace ? emptyUserspaceReport() : null;
  let error: string | null = null;
  try {
    // Before the VM is attached: this thread's reset batch records its merges only then.
    installCoverage(config.coverage, config.participant);
    const vm = Vm.attach(config.vm);
    const globals = new SharedBlock(GuestGlobalsLayout, config.globals).i32;
    const shared = new SharedBlock(UserspaceSharedLayout, config.shared).i32;
    if (config.wmm !== null) sync = installRunMemory(config.wmm, vm, config.roster, globals, shared, p, token, config.harvesterThreads?.sharedWords ?? null);
    installStepHook(park);
    park(ControlStep.START, p, 0);
    if (report) runUserspaceParticipant(vm, config, globals, shared, park, report);
    else if (p <= config.roster.vcpus) runVcpuParticipant(vm, p - 1, config.scenario, globals, config.ledger, park);
    else runExtra(config.roster.extras[p - config.roster.vcpus - 1], { vm, config, globals, shared, park });
  } catch (e) {
    // The scheduler abandoning the run is no error of this participant.
    if (!(e instanceof RunAborted)) error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    clearStepHook();
    // The last move's control-word changes (a vCPU's DEAD state) are releases too.
    sync?.beforePark();
    uninstallRunMemory();
    clearCoverage();
    token.finish();
  }
  return { participant: p, error, userspace: report };
}

/** Userspace (the harvester, or the one that asks its threads), or one of the harvester's own threads. */
function runsHarvester(config: ControlledRunConfig): boolean {
  const p = config.participant;
  if (p === USERSPACE_PARTICIPANT) return true;
  return config.scenario.userHarvesterThreads !== undefined && p > config.roster.vcpus && (config.roster.extras[p - config.roster.vcpus - 1] ?? '').startsWith('harvester');
}

function runExtra(kind: string | undefined, ctx: ExtraParticipantContext): void {
  const run = kind === undefined ? undefined : extraKinds.get(kind);
  if (run === undefined) throw new Error(`participant ${ctx.config.participant}: no extra participant kind '${kind}' in this worker`);
  run(ctx);
}

export function createControlledWorkerApi(): ControlledWorkerApi {
  return {
    async run(config: ControlledRunConfig): Promise<ParticipantResult> {
      const user = config.scenario.userHarvester;
      if (user !== undefined && runsHarvester(config)) {
        // Userspace (or a harvester thread) runs the user's harvester: its module is loaded (once per worker) first.
        try {
          await harvesterAt(user);
        } catch (e) {
          new ParticipantToken(config.token, config.participant).finish();
          return { participant: config.participant, error: e instanceof Error ? e.message : String(e), userspace: null };
        }
      }
      return runParticipant(config);
    },
    async ping(): Promise<string> {
      return 'pong';
    },
  };
}
