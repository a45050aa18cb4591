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
 * a granted participant never parks again (stuck: a wait the model does not know about), when a
 * participant's worker dies or cannot be started (worker-lost), or when a replayed choice cannot
 * be taken (divergence).
 *
 * Liveness: every wait of a run is bounded (see ControlledLiveness), and a bound that expires
 * is an outcome of the run — with every participant's state from the token in its detail — not
 * a hang: the run still returns, its workers that did not report are replaced, and the next run
 * starts from a clean pool. The bounds are far below a test's timeout, so a campaign survives
 * a bad run instead of stalling the test it runs in (and, through the pool, the next one).
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { ParticipantStatus } from './token-layout.js';
import { SharedBlock } from '../../abi/layout.js';
import { VcpuLayout } from '../../kernel/vcpu-layout.js';
import { now } from '../../base/clock.js';
import { yieldToEventLoop } from '../../platform/async-wait.js';
import { type Chooser, ReplayDivergence } from './choosers.js';
import { participantName, stepName } from './control-steps.js';
import { buildControlledVm } from './controlled-vm.js';
import { isStepEnabled } from './enabled.js';
import type { ControlledWorkerHandle, ParticipantResult } from './participant-api.js';
import { type ParticipantPool, callWorker } from './pool.js';
import { type ControlledScenario, estimateSteps } from './scenario.js';
import { SchedulerToken } from './token.js';
import { type TraceEntry, traceHash } from './trace.js';
import type { UserspaceReport } from './userspace-participant.js';

export type AbortReason = 'deadlock' | 'step-limit' | 'stuck' | 'worker-lost' | 'divergence';

/**
 * The liveness bounds, the only clocks in a controlled run. A move takes microseconds, so
 * these are generous — a machine that stalls a thread for a second or two does not turn into a
 * harness error — yet short enough that a stuck run is classified, and its workers replaced,
 * well within a test's timeout.
 */
export interface ControlledLiveness {
  /** Every participant parked at its first step (run messages delivered to idle workers). */
  readonly startMs: number;
  /** A granted participant reaches its next step point. */
  readonly stepMs: number;
  /** Once the run ended or was abandoned, each worker returns its result. */
  readonly resultMs: number;
}

export const DEFAULT_LIVENESS: ControlledLiveness = { startMs: 10_000, stepMs: 10_000, resultMs: 5_000 };

export interface ControlledRunInput {
  readonly scenario: ControlledScenario;
  readonly mutants: number;
  /** The run's seed (labels the oracle's reports; the chooser is seeded by the caller). */
  readonly seed: number;
  readonly chooser: Chooser;
  /** Abandon the run after this many steps (default: 20 × the scenario's estimate, at least 5000). */
  readonly maxSteps?: number;
  /** Overrides of DEFAULT_LIVENESS. */
  readonly liveness?: Partial<ControlledLiveness>;
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
  /** Participants that ended with an exception, or whose worker was lost. */
  readonly errors: string[];
  readonly kernelWarnings: number;
  readonly kernelBugs: number;
  readonly ringFullExits: number;
  readonly elapsedMs: number;
}

/**
 * The scheduler blocks on the token (Node's main thread may) for at most this long at a time,
 * then gives the event loop a turn: a worker that crashed is only reported through an 'exit' or
 * 'error' event, which a thread blocked in Atomics.wait never sees, and timers (a test's own
 * timeout among them) must not be starved for a whole liveness bound.
 */
const BLOCK_SLICE_MS = 20;

type Settled = { readonly ok: ParticipantResult } | { readonly failed: unknown };

/** Runs take the pool one at a time (see ParticipantPool.lease). */
export async function runControlled(input: ControlledRunInput, pool: ParticipantPool): Promise<ControlledRunResult> {
  const release = await pool.lease();
  try {
    return await runLeased(input, pool);
  } finally {
    release();
  }
}

async function runLeased(input: ControlledRunInput, pool: ParticipantPool): Promise<ControlledRunResult> {
  const t0 = now();
  const s = input.scenario;
  const parts = s.vcpus + 1;
  const maxSteps = input.maxSteps ?? Math.max(5000, 20 * estimateSteps(s));
  const liveness: ControlledLiveness = { ...DEFAULT_LIVENESS, ...input.liveness };
  const vm = buildControlledVm(s, input.mutants);
  const token = new SchedulerToken(parts);
  const choices: number[] = [];
  const trace: TraceEntry[] = [];
  const errors: string[] = [];
  let abort: AbortReason | null = null;
  let abortDetail: string | null = null;
  let results: (ParticipantResult | null)[] = [];

  const finish = (): ControlledRunResult => {
    for (const [p, r] of results.entries()) {
      if (r !== null && r.error !== null) errors.push(`${participantName(p)}: ${r.error}`);
    }
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
      ringFullExits,
      elapsedMs: Math.round((now() - t0) * 1000) / 1000,
    };
  };

  try {
    await pool.ensure(parts);
  } catch (e) {
    // No run without a worker for every participant. Reported as this run's outcome, so that
    // the campaign goes on; the pool starts the missing worker again for the next run.
    abort = 'worker-lost';
    abortDetail = `controlled workers could not be started: ${e instanceof Error ? e.message : String(e)}`;
    errors.push(abortDetail);
    return finish();
  }

  const globals = new SharedBlock(GuestGlobalsLayout);
  const buffers = vm.buffers();
  const handles: ControlledWorkerHandle[] = [];
  const pending: Promise<ParticipantResult>[] = [];
  for (let p = 0; p < parts; p++) {
    const h = pool.handle(p);
    handles.push(h);
    const call = h.api.run({ participant: p, token: token.buffer, vm: buffers, globals: globals.buffer, scenario: s, seed: input.seed, mutants: input.mutants });
    // Observed now so that a call failing early is not an unhandled rejection; its outcome is
    // collected below.
    call.catch(() => undefined);
    pending.push(call);
  }

  /**
   * Wait until `settled()` holds: 'ok', 'timeout', or the participant whose worker died.
   *
   * The decision is taken from the participants' STATUS words, never from counting PARKED_SEQ
   * bumps: a participant publishes PARKED (or FINISHED) and only then rings, so a ring can land
   * long after the status it announces — its thread preempted between the two stores. The start
   * barrier, which sees every status settled, used to let such a late START ring through, and
   * the first grant's "wait for a ring" then returned at once while the granted participant was
   * still running. From there the scheduler was one ring behind: two participants moved at once
   * (a nondeterministic run), and a granted participant could be seen not yet parked, so the run
   * was called a deadlock and abandoned while that participant was still on its way to its next
   * park — where it then waited for a grant that never came. The ring is only a doorbell here:
   * a stale one merely wakes us to look again.
   */
  const awaitSettled = async (settled: () => boolean, limitMs: number): Promise<'ok' | 'timeout' | number> => {
    const deadline = now() + limitMs;
    for (;;) {
      // Read the doorbell before the condition: a status we miss is published before a ring
      // that comes after `seen`, so the wait below cannot sleep through it.
      const seen = token.parkedSeq();
      if (settled()) return 'ok';
      const left = deadline - now();
      if (left > 0 && (await token.waitPark(seen, Math.min(BLOCK_SLICE_MS, left)))) continue;
      // A whole slice without news: give the event loop a turn, so that a worker's 'error' or
      // 'exit' event is delivered (it will never ring again) and timers run, then look.
      await yieldToEventLoop();
      for (let p = 0; p < parts; p++) if (handles[p]!.failure !== null) return p;
      if (now() >= deadline) return settled() ? 'ok' : 'timeout';
    }
  };
  const lostWorker = (p: number, when: string): void => {
    abort = 'worker-lost';
    abortDetail = `${participantName(p)}'s worker died ${when}: ${handles[p]!.failure}; ${describeTokens(token, parts)}`;
  };

  let internal: unknown = null;
  try {
    // Everyone parks at START (or has already finished) before the first choice.
    const started = await awaitSettled(() => token.quiescent(), liveness.startMs);
    if (started === 'timeout') {
      abort = 'stuck';
      abortDetail = `participants did not all reach their first step within ${liveness.startMs} ms; ${describeTokens(token, parts)}`;
    } else if (started !== 'ok') {
      lostWorker(started, 'before the first step');
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
        abortDetail = `no participant can move after ${choices.length} steps: ${describeTokens(token, parts)}`;
        break;
      }
      if (choices.length >= maxSteps) {
        abort = 'step-limit';
        abortDetail = `still running after ${maxSteps} steps: ${describeTokens(token, parts)}`;
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
      token.grant(q);
      // Its move is over once it parks again or finishes (grant() marked it RUNNING).
      const r = await awaitSettled(() => token.status(q) !== ParticipantStatus.RUNNING, liveness.stepMs);
      if (r === 'timeout') {
        abort = 'stuck';
        abortDetail =
          `${participantName(q)} did not reach its next step within ${liveness.stepMs} ms after ` +
          `${stepName(trace[trace.length - 1]![1])} (step ${choices.length}); ${describeTokens(token, parts)}`;
        break;
      }
      if (r !== 'ok') {
        lostWorker(r, `at step ${choices.length}`);
        break;
      }
      last = q;
    }
  } catch (e) {
    // A bug of the engine or a chooser: still unwind the participants and collect the workers
    // below (so that the pool is fit for the next run), then rethrow.
    internal = e;
  }
  // Whatever ended the run: participants still parked unwind, and any that parks later (a slow
  // one, or one whose run message is only now taken) unwinds at once (ParticipantToken.park).
  if (!token.allFinished()) token.abort();

  results = await Promise.all(
    pending.map(async (call, p): Promise<ParticipantResult | null> => {
      const settled: Settled = await callWorker(handles[p]!, call, liveness.resultMs, 'its result').then(
        (ok) => ({ ok }),
        (failed: unknown) => ({ failed }),
      );
      if ('ok' in settled) return settled.ok;
      // It never came back (stuck in a wait the model does not know about, or its worker died),
      // or the call failed: the worker cannot be trusted with another run.
      const why = settled.failed instanceof Error ? settled.failed.message : String(settled.failed);
      const state = describeParticipant(token, p);
      const replaced = await pool.replace(p);
      errors.push(
        `${participantName(p)}: ${why} (token: ${state}; abort ${abort ?? (internal !== null ? 'internal error' : 'none')}); ` +
          (replaced === null ? 'worker replaced' : `worker dropped, its replacement failed: ${replaced}`),
      );
      return null;
    }),
  );
  if (internal !== null) throw internal;
  return finish();
}

/** One participant's state from shared memory, in words. */
function describeParticipant(token: SchedulerToken, p: number): string {
  const at = `${stepName(token.step(p))}(${token.argA(p)}, ${token.argB(p)})`;
  switch (token.status(p)) {
    case ParticipantStatus.IDLE:
      return 'never started (its worker did not take the run)';
    case ParticipantStatus.PARKED:
      return `parked at ${at}`;
    case ParticipantStatus.RUNNING:
      return `running, granted at ${at}`;
    case ParticipantStatus.FINISHED:
      return 'finished';
    default:
      return `status ${token.status(p)}`;
  }
}

/** Every participant's state, for a liveness report. */
function describeTokens(token: SchedulerToken, parts: number): string {
  const out: string[] = [];
  for (let p = 0; p < parts; p++) out.push(`${participantName(p)} ${describeParticipant(token, p)}`);
  return `participants: ${out.join('; ')}`;
}
