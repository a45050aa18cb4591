/**
 * One controlled run. The main thread builds the VM, hands it to one worker per participant
 * (userspace + each vCPU), waits until all of them are parked at their first step, and then
 * schedules: among the parked participants that may move, the chooser picks one; it is granted
 * one move, and the engine waits until it parks again (or finishes). The sequence of choices,
 * together with the scenario and the mutants, determines everything the run does; the trace
 * records it step by step.
 *
 * A run ends when every participant has finished. It is abandoned (and every parked
 * participant unwound) when nobody may move (deadlock), after `maxSteps` steps (livelock), when
 * a granted participant never parks again (stuck: a wait the model does not know about), or
 * when a replayed choice cannot be taken (divergence).
 */
import { GuestGlobalsLayout, ParticipantStatus, SharedBlock, VcpuLayout } from '../../abi/layout.js';
import { now } from '../../kernel/sync.js';
import { TimeoutError, withTimeout } from '../../platform/async-wait.js';
import { type Chooser, ReplayDivergence } from './choosers.js';
import { participantName, stepName } from './control-steps.js';
import { buildControlledVm } from './controlled-vm.js';
import { isStepEnabled } from './enabled.js';
import type { ParticipantResult } from './participant-api.js';
import type { ParticipantPool } from './pool.js';
import { type ControlledScenario, estimateSteps } from './scenario.js';
import { SchedulerToken } from './token.js';
import { type TraceEntry, traceHash } from './trace.js';
import type { UserspaceReport } from './userspace-participant.js';

export type AbortReason = 'deadlock' | 'step-limit' | 'stuck' | 'divergence';

export interface ControlledRunInput {
  readonly scenario: ControlledScenario;
  readonly mutants: number;
  /** The run's seed (labels the oracle's reports; the chooser is seeded by the caller). */
  readonly seed: number;
  readonly chooser: Chooser;
  /** Abandon the run after this many steps (default: 20 × the scenario's estimate, at least 5000). */
  readonly maxSteps?: number;
}

export interface ControlledRunResult {
  readonly seed: number;
  readonly scenario: ControlledScenario;
  readonly mutants: number;
  readonly steps: number;
  /** Who moved at each step: 0 = userspace, p ≥ 1 = vCPU p − 1. */
  readonly choices: number[];
  readonly trace: TraceEntry[];
  readonly traceHash: string;
  readonly abort: AbortReason | null;
  readonly abortDetail: string | null;
  readonly userspace: UserspaceReport | null;
  /** Participants that ended with an exception. */
  readonly errors: string[];
  readonly kernelWarnings: number;
  readonly kernelBugs: number;
  readonly resetBatchesSkipped: number;
  readonly ringFullExits: number;
  readonly elapsedMs: number;
}

// Liveness bounds, the only clocks in a controlled run. A move takes microseconds; these are
// generous so that a machine that stalls a thread for seconds (swapping, a benchmark on every
// core) does not turn into a harness error.
/** All participants must be parked at their first step within this (worker message delivery). */
const START_TIMEOUT_MS = 60_000;
/** A granted participant runs to its next step point; far longer than that means it is stuck. */
const STEP_TIMEOUT_MS = 60_000;
/** How long finishing participants (or aborted ones unwinding) may take to report. */
const RESULT_TIMEOUT_MS = 60_000;

export async function runControlled(input: ControlledRunInput, pool: ParticipantPool): Promise<ControlledRunResult> {
  const t0 = now();
  const s = input.scenario;
  const parts = s.vcpus + 1;
  const maxSteps = input.maxSteps ?? Math.max(5000, 20 * estimateSteps(s));
  await pool.ensure(parts);
  const vm = buildControlledVm(s, input.mutants);
  const globals = new SharedBlock(GuestGlobalsLayout);
  const token = new SchedulerToken(parts);
  const buffers = vm.buffers();
  const pending: Promise<ParticipantResult>[] = [];
  for (let p = 0; p < parts; p++) {
    pending.push(
      pool.handle(p).api.run({ participant: p, token: token.buffer, vm: buffers, globals: globals.buffer, scenario: s, seed: input.seed }),
    );
  }

  const choices: number[] = [];
  const trace: TraceEntry[] = [];
  let abort: AbortReason | null = null;
  let abortDetail: string | null = null;
  let stuck = -1;

  // Everyone parks at START before the first choice.
  const startDeadline = now() + START_TIMEOUT_MS;
  for (;;) {
    const seen = token.parkedSeq();
    if (token.quiescent()) break;
    const left = startDeadline - now();
    if (left <= 0 || !(await token.waitPark(seen, left))) {
      abort = 'stuck';
      abortDetail = `participants did not reach their first step within ${START_TIMEOUT_MS} ms`;
      break;
    }
  }

  const enabled: number[] = [];
  let last = -1;
  while (abort === null && !token.allFinished()) {
    enabled.length = 0;
    for (let p = 0; p < parts; p++) {
      if (token.status(p) === ParticipantStatus.PARKED && isStepEnabled(vm, s.vcpus, p, token.step(p), token.argA(p))) enabled.push(p);
    }
    if (enabled.length === 0) {
      abort = 'deadlock';
      abortDetail = `no participant can move after ${choices.length} steps: ${describeParked(token, parts)}`;
      break;
    }
    if (choices.length >= maxSteps) {
      abort = 'step-limit';
      abortDetail = `still running after ${maxSteps} steps: ${describeParked(token, parts)}`;
      break;
    }
    let q: number;
    try {
      q = input.chooser.choose(choices.length, enabled, last);
    } catch (e) {
      if (!(e instanceof ReplayDivergence)) throw e;
      abort = 'divergence';
      abortDetail = e.message;
      break;
    }
    choices.push(q);
    trace.push([q, token.step(q), token.argA(q), token.argB(q)]);
    const seen = token.parkedSeq();
    token.grant(q);
    if (!(await token.waitPark(seen, STEP_TIMEOUT_MS))) {
      abort = 'stuck';
      stuck = q;
      abortDetail = `${participantName(q)} did not reach its next step within ${STEP_TIMEOUT_MS} ms after ${stepName(trace[trace.length - 1]![1])}`;
      break;
    }
    last = q;
  }
  if (abort !== null) token.abort();
  const lostResults: string[] = [];

  const results: (ParticipantResult | null)[] = await Promise.all(
    pending.map(async (r, p) => {
      try {
        return await withTimeout(r, RESULT_TIMEOUT_MS, `participant ${participantName(p)}`);
      } catch (e) {
        // Never came back (stuck in an unmodelled wait, or the worker died), or the call
        // failed: give the pool a fresh worker, and say what the token and the worker showed.
        const status = token.status(p);
        const why = e instanceof TimeoutError ? `no result within ${RESULT_TIMEOUT_MS} ms` : `the call failed: ${String(e)}`;
        lostResults.push(
          `${participantName(p)}: ${why} (token status ${status}, at ${stepName(token.step(p))}, abort ${abort ?? 'none'}; ` +
            `worker ${pool.handle(p).failure ?? 'alive'}); worker replaced`,
        );
        await pool.replace(p);
        if (stuck < 0) stuck = p;
        return null;
      }
    }),
  );
  const errors: string[] = [];
  errors.push(...lostResults);
  results.forEach((r, p) => {
    if (r !== null && r.error !== null) errors.push(`${participantName(p)}: ${r.error}`);
  });
  const st = vm.stats();
  let ringFullExits = 0;
  for (let i = 0; i < s.vcpus; i++) ringFullExits += vm.vcpuBlock(i).f64[VcpuLayout.floats.RING_FULL_EXITS]!;
  return {
    seed: input.seed,
    scenario: s,
    mutants: input.mutants,
    steps: choices.length,
    choices,
    trace,
    traceHash: traceHash(trace),
    abort,
    abortDetail,
    userspace: results[0]?.userspace ?? null,
    errors,
    kernelWarnings: st.warnings,
    kernelBugs: st.kernelBugs,
    resetBatchesSkipped: st.resetBatchesSkipped,
    ringFullExits,
    elapsedMs: Math.round((now() - t0) * 1000) / 1000,
  };
}

function describeParked(token: SchedulerToken, parts: number): string {
  const out: string[] = [];
  for (let p = 0; p < parts; p++) {
    const st = token.status(p);
    out.push(`${participantName(p)}:${st === ParticipantStatus.FINISHED ? 'finished' : st === ParticipantStatus.PARKED ? stepName(token.step(p)) : 'running'}`);
  }
  return out.join(' ');
}
