/**
 * The body of a controlled participant worker: attach to the run's VM, park on the token at
 * every step hook (the kernel's and the participant's own), run the vCPU or userspace program.
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { SharedBlock } from '../../abi/layout.js';
import { clearCoverage, installCoverage } from '../../kernel/coverage.js';
import { clearStepHook, installStepHook } from '../../kernel/step-hook.js';
import { Vm } from '../../kernel/vm.js';
import { ControlStep, USERSPACE_PARTICIPANT } from './control-steps.js';
import type { ControlledRunConfig, ControlledWorkerApi, ParticipantResult } from './participant-api.js';
import { ParticipantToken, RunAborted } from './token.js';
import { runUserspaceParticipant } from './userspace-participant.js';
import { type UserspaceReport, emptyUserspaceReport } from './userspace-report.js';
import { runVcpuParticipant } from './vcpu-participant.js';

export function runParticipant(config: ControlledRunConfig): ParticipantResult {
  const token = new ParticipantToken(config.token, config.participant);
  const park = (step: number, a: number, b: number): void => token.park(step, a, b);
  const isUserspace = config.participant === USERSPACE_PARTICIPANT;
  const report: UserspaceReport | null = isUserspace ? emptyUserspaceReport() : null;
  let error: string | null = null;
  try {
    // Before the VM is attached: this thread's reset batch records its merges only then.
    installCoverage(config.coverage, config.participant);
    const vm = Vm.attach(config.vm);
    const globals = new SharedBlock(GuestGlobalsLayout, config.globals).i32;
    installStepHook(park);
    park(ControlStep.START, config.participant, 0);
    if (report) runUserspaceParticipant(vm, config, globals, park, report);
    else runVcpuParticipant(vm, config.participant - 1, config.scenario, globals, park);
  } catch (e) {
    // The scheduler abandoning the run is no error of this participant.
    if (!(e instanceof RunAborted)) error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    clearStepHook();
    clearCoverage();
    token.finish();
  }
  return { participant: config.participant, error, userspace: report };
}

export function createControlledWorkerApi(): ControlledWorkerApi {
  return {
    async run(config: ControlledRunConfig): Promise<ParticipantResult> {
      return runParticipant(config);
    },
    async ping(): Promise<string> {
      return 'pong';
    },
  };
}
