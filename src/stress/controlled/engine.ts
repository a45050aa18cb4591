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
import { Step } from '../../kernel/step-hook.js';
import { VcpuLayout } from '../../kernel/vcpu-layout.js';
import { coverageBuffer, sumCoverage } from '../../kernel/coverage.js';
import { runCoverage } from '../coverage/campaign-coverage.js';
import type { Vm } from '../../kernel/vm.js';
import { WeakModel } from '../../kernel/wmm/model.js';
import type { MemoryModel } from '../../kernel/wmm/ordering.js';
import { assert } from '../../base/assert.js';
import { now } from '../../base/clock.js';
import { ReplayDivergence, readFromChoice } from './choosers.js';
import { type Roster, participantCount, participantName, stepName } from './control-steps.js';
import { buildControlledVm } from './controlled-vm.js';
import { type EnabledContext, isStepEnabled } from './enabled.js';
import { ParkWaiter } from './park-wait.js';
import type { ControlledWorkerHandle, ParticipantResult } from './participant-api.js';
import { type ParticipantPool, callWorker } from './pool.js';
import { type AbortReason, type ControlledLiveness, type ControlledRunInput, type ControlledRunResult, DEFAULT_LIVENESS } from './run-result.js';
import { DEFAULT_WMM_HISTORY, allocateRunMemory, runLocations } from './run-memory.js';
import { type ControlledScenario, estimateSteps, rosterOf } from './scenario.js';
import { SchedulerToken } from './token.js';
import { describeParticipant, describeTokens } from './token-describe.js';
import { type TraceEntry, traceHash } from './trace.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';
import { InvariantChecker } from './invariant.js';
import { type Explanation, explainViolation } from './explain.js';
import { pageLedgerBytes, pageLedgerViews } from './ledger-layout.js';
import { dataSlots } from './controlled-vm.js';
import { readModelEvents } from '../../kernel/wmm/events.js';
import { type HarvesterRunBuffers, allocateHarvesterRunBuffers } from './harvester-run-buffers.js';

export { type AbortReason, type ControlledLiveness, type ControlledRunInput, type ControlledRunResult, DEFAULT_LIVENESS, harnessLost } from './run-result.js';

/**
 * The default step budget: a run that takes this many times the scenario's estimated steps is
 * going round in circles (a livelock), not merely long — the estimate is rough, but not off by
 * more than a few times.
 */
const STEP_LIMIT_FACTOR = 20;
/** ...and never fewer than this: the estimate of a tiny scenario is too rough to cut it off by. */
const MIN_STEP_LIMIT = 5000;

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
  const run = new ControlledRun(input, pool);
  if (!(await run.startParticipants())) return run.result([]);
  let internal: unknown = null;
  try {
    await run.startBarrier();
    await run.schedule();
  } catch (e) {
    // A bug of the engine or a chooser: still unwind the participants and collect the workers
    // below (so that the pool is fit for the next run), then rethrow.
    internal = e;
  }
  run.abandonUnfinished();
  const results = await run.collectResults(internal !== null);
  if (internal !== null) throw internal;
  return run.result(results);
}

/** One run's state, from handing the VM to the workers to the result. */
class ControlledRun {
  private readonly t0 = now();
  private readonly s: ControlledScenario;
  private readonly roster: Roster;
  private readonly parts: number;
  private readonly memoryModel: MemoryModel;
  private readonly wmmHistory: number;
  private readonly globals = new SharedBlock(GuestGlobalsLayout);
  private readonly shared = new SharedBlock(UserspaceSharedLayout);
  /** The weak model's shadow state (null under sc), and a view to stamp its events with steps. */
  private readonly wmm: SharedArrayBuffer | null;
  private readonly model: WeakModel | null;
  private readonly enabledCtx: EnabledContext;
  private readonly ledger: SharedArrayBuffer;
  /** A user harvester's threads' buffers (null: it has none). */
  private readonly harvesterBuffers: HarvesterRunBuffers | null;
  private readonly checker: InvariantChecker;
  private readonly maxSteps: number;
  private readonly liveness: ControlledLiveness;
  private readonly vm: Vm;
  private readonly token: SchedulerToken;
  /** One coverage block per participant. */
  private readonly coverage: SharedArrayBuffer;
  private readonly choices: number[] = [];
  private readonly trace: TraceEntry[] = [];
  private readonly errors: string[] = [];
  private abort: AbortReason | null = null;
  private abortDetail: string | null = null;
  private readonly handles: ControlledWorkerHandle[] = [];
  /** Each participant's run call, in participant order. */
  private readonly pending: Promise<ParticipantResult>[] = [];
  private readonly waiter: ParkWaiter;
  /** The participants that may move at the current step (reused from step to step). */
  private readonly enabled: number[] = [];

  constructor(
    private readonly input: ControlledRunInput,
    private readonly pool: ParticipantPool,
  ) {
    const s = input.scenario;
    this.s = s;
    this.roster = rosterOf(s);
    this.parts = participantCount(this.roster);
    this.maxSteps = input.maxSteps ?? Math.max(MIN_STEP_LIMIT, STEP_LIMIT_FACTOR * estimateSteps(s));
    this.liveness = { ...DEFAULT_LIVENESS, ...input.liveness };
    this.vm = buildControlledVm(s, input.mutants);
    this.token = new SchedulerToken(this.parts);
    this.coverage = coverageBuffer(this.parts);
    this.waiter = new ParkWaiter(this.token, this.handles);
    this.memoryModel = input.memoryModel ?? 'sc';
    this.wmmHistory = input.wmmHistory ?? DEFAULT_WMM_HISTORY;
    this.harvesterBuffers = allocateHarvesterRunBuffers(this.vm, s);
    this.wmm = allocateRunMemory({ model: this.memoryModel, history: this.wmmHistory }, this.vm, this.roster, this.globals.i32, this.shared.i32, this.harvesterBuffers?.sharedWords ?? null);
    this.model = this.wmm === null ? null : new WeakModel(this.wmm);
    this.enabledCtx = { vm: this.vm, vcpus: s.vcpus, shared: this.shared.i32 };
    // The per-step invariant follows the first data memslot (vcpu-participant and the userspace
    // program size their ledger views the same way).
    const checked = dataSlots(this.vm, s)[0]!;
    this.ledger = new SharedArrayBuffer(pageLedgerBytes(checked.pageCount, s.vcpus));
    this.checker = new InvariantChecker(this.vm, checked, s.vcpus, pageLedgerViews(this.ledger, checked.pageCount, s.vcpus));
  }

  /** Hand the run to one worker per participant; false when the workers could not be started. */
  async startParticipants(): Promise<boolean> {
    try {
      await this.pool.ensure(this.parts);
    } catch (e) {
      // No run without a worker for every participant. Reported as this run's outcome, so that
      // the campaign goes on; the pool starts the missing worker again for the next run.
      this.abandon('worker-lost', `controlled workers could not be started: ${e instanceof Error ? e.message : String(e)}`);
      this.errors.push(this.abortDetail!);
      return false;
    }
    const buffers = this.vm.buffers();
    const { scenario, seed, mutants } = this.input;
    const common = {
      roster: this.roster,
      token: this.token.buffer,
      vm: buffers,
      globals: this.globals.buffer,
      shared: this.shared.buffer,
      wmm: this.wmm,
      ledger: this.ledger,
      scenario,
      seed,
      mutants,
      coverage: this.coverage,
      harvesterThreads: this.harvesterBuffers,
    };
    for (let p = 0; p < this.parts; p++) {
      const h = this.pool.handle(p);
      this.handles.push(h);
      const call = h.api.run({ participant: p, ...common });
      // Observed now so that a call failing early is not an unhandled rejection; its outcome is
      // collected by collectResults.
      call.catch(() => undefined);
      this.pending.push(call);
    }
    return true;
  }

  /** Everyone parks at START (or has already finished) before the first choice. */
  async startBarrier(): Promise<void> {
    const started = await this.waiter.until(() => this.token.quiescent(), this.liveness.startMs);
    if (started === 'timeout') {
      this.abandon('stuck', `participants did not all reach their first step within ${this.liveness.startMs} ms; ${this.describeAll()}`);
    } else if (started !== 'ok') {
      this.lostWorker(started, 'before the first step');
    }
  }

  /** Choose, grant, await the move; until everyone finished or the run is abandoned. */
  async schedule(): Promise<void> {
    let last = -1;
    this.input.onStep?.(0, this.vm);
    while (this.abort === null && !this.token.allFinished()) {
      const q = this.choose(last);
      if (q === null || !(await this.move(q))) return;
      // Every move ends at a step point (or the participant's end): the invariant must hold there.
      this.checker.check(this.choices.length - 1, q, this.token);
      this.input.onStep?.(this.choices.length, this.vm);
      last = q;
    }
  }

  /** The chooser's pick among the participants that may move; null when the run must end. */
  private choose(last: number): number | null {
    const enabled = this.enabled;
    enabled.length = 0;
    for (let p = 0; p < this.parts; p++) {
      if (this.token.status(p) === ParticipantStatus.PARKED && isStepEnabled(this.enabledCtx, p, this.token.step(p), this.token.argA(p))) enabled.push(p);
    }
    if (enabled.length === 0) {
      this.abandon('deadlock', `no participant can move after ${this.choices.length} steps: ${this.describeAll()}`);
      return null;
    }
    if (this.choices.length >= this.maxSteps) {
      this.abandon('step-limit', `still running after ${this.maxSteps} steps: ${this.describeAll()}`);
      return null;
    }
    let q: number;
    try {
      q = this.input.chooser.choose(this.choices.length, enabled, last);
    } catch (e) {
      if (!(e instanceof ReplayDivergence)) throw e;
      this.abandon('divergence', e.message);
      return null;
    }
    // Granting a participant that is not parked would let two move at once.
    assert(enabled.includes(q), 'the chooser picked a participant that may not move');
    return q;
  }

  /**
   * Record and grant q's move, then wait until it parks again or finishes; false when the run
   * must end. A park at READ_FROM (a load under a weak model with several candidate stores) is
   * part of the move: the chooser picks the store, and q goes on at once.
   */
  private async move(q: number): Promise<boolean> {
    const token = this.token;
    this.choices.push(q);
    this.trace.push([q, token.step(q), token.argA(q), token.argB(q)]);
    if (!(await this.grantAndAwait(q))) return false;
    while (token.status(q) === ParticipantStatus.PARKED && token.step(q) === Step.READ_FROM) {
      const loc = token.argA(q);
      let i: number;
      try {
        i = this.input.chooser.chooseReadFrom(this.choices.length, token.argB(q), loc, q);
      } catch (e) {
        if (!(e instanceof ReplayDivergence)) throw e;
        this.abandon('divergence', e.message);
        return false;
      }
      assert(i >= 0 && i < token.argB(q), 'the chooser picked a store the load cannot read');
      token.setDecision(q, i);
      this.choices.push(readFromChoice(i));
      this.trace.push([q, Step.READ_FROM, loc, i]);
      if (!(await this.grantAndAwait(q))) return false;
    }
    return true;
  }

  /** Grant q one move and wait until it parks again or finishes; false when the run must end. */
  private async grantAndAwait(q: number): Promise<boolean> {
    const token = this.token;
    if (this.model !== null) this.model.step = this.choices.length - 1;
    token.grant(q);
    // Its move is over once it parks again or finishes (grant() marked it RUNNING).
    const r = await this.waiter.until(() => token.status(q) !== ParticipantStatus.RUNNING, this.liveness.stepMs);
    if (r === 'timeout') {
      this.abandon(
        'stuck',
        `${participantName(q, this.roster)} did not reach its next step within ${this.liveness.stepMs} ms after ` +
          `${stepName(this.trace[this.trace.length - 1]![1])} (step ${this.choices.length}); ${this.describeAll()}`,
      );
      return false;
    }
    if (r !== 'ok') {
      this.lostWorker(r, `at step ${this.choices.length}`);
      return false;
    }
    return true;
  }

  /**
   * Whatever ended the run: participants still parked unwind, and any that parks later (a slow
   * one, or one whose run message is only now taken) unwinds at once (ParticipantToken.park).
   */
  abandonUnfinished(): void {
    if (!this.token.allFinished()) this.token.abort();
  }

  /** Every participant's result (null for one that did not return it; its worker is replaced). */
  collectResults(internalError: boolean): Promise<(ParticipantResult | null)[]> {
    return Promise.all(this.pending.map((call, p) => this.collectResult(p, call, internalError)));
  }

  private async collectResult(p: number, call: Promise<ParticipantResult>, internalError: boolean): Promise<ParticipantResult | null> {
    const settled: Settled = await callWorker(this.handles[p]!, call, this.liveness.resultMs, 'its result').then(
      (ok) => ({ ok }),
      (failed: unknown) => ({ failed }),
    );
    if ('ok' in settled) return settled.ok;
    // It never came back (stuck in a wait the model does not know about, or its worker died),
    // or the call failed: the worker cannot be trusted with another run.
    const why = settled.failed instanceof Error ? settled.failed.message : String(settled.failed);
    const state = describeParticipant(this.token, p);
    const replaced = await this.pool.replace(p);
    this.errors.push(
      `${participantName(p, this.roster)}: ${why} (token: ${state}; abort ${this.abort ?? (internalError ? 'internal error' : 'none')}); ` +
        (replaced === null ? 'worker replaced' : `worker dropped, its replacement failed: ${replaced}`),
    );
    return null;
  }

  result(results: readonly (ParticipantResult | null)[]): ControlledRunResult {
    assert(this.trace.length === this.choices.length, 'one trace entry per choice');
    for (const [p, r] of results.entries()) {
      if (r !== null && r.error !== null) this.errors.push(`${participantName(p, this.roster)}: ${r.error}`);
    }
    const st = this.vm.stats();
    let ringFullExits = 0;
    for (let i = 0; i < this.s.vcpus; i++) ringFullExits += this.vm.vcpuBlock(i).f64[VcpuLayout.floats.RING_FULL_EXITS]!;
    return {
      seed: this.input.seed,
      scenario: this.s,
      mutants: this.input.mutants,
      memoryModel: this.memoryModel,
      wmmHistory: this.wmmHistory,
      roster: this.roster,
      steps: this.choices.length,
      choices: this.choices,
      trace: this.trace,
      traceHash: traceHash(this.trace),
      abort: this.abort,
      abortDetail: this.abortDetail,
      userspace: results[0]?.userspace ?? null,
      errors: this.errors,
      kernelWarnings: st.warnings,
      kernelBugs: st.kernelBugs,
      ringFullExits,
      coverage: runCoverage(sumCoverage(this.coverage)),
      staleReads: this.model?.staleReads ?? 0,
      invariant: this.checker.violation,
      explanation: this.explanation(),
      elapsedMs: roundToMicroseconds(now() - this.t0),
    };
  }

  /** Why the invariant broke, when it did. */
  private explanation(): Explanation | null {
    const v = this.checker.violation;
    if (v === null) return null;
    const memory = this.wmm === null ? null : { events: readModelEvents(this.wmm), locs: runLocations(this.vm, this.harvesterBuffers?.sharedWords ?? null) };
    return explainViolation(v, this.checker.journal, this.trace, this.roster, memory);
  }

  private abandon(reason: AbortReason, detail: string): void {
    this.abort = reason;
    this.abortDetail = detail;
  }

  private lostWorker(p: number, when: string): void {
    this.abandon('worker-lost', `${participantName(p, this.roster)}'s worker died ${when}: ${this.handles[p]!.failure}; ${this.describeAll()}`);
  }

  private describeAll(): string {
    return describeTokens(this.token, this.roster, this.parts);
  }
}

const US_PER_MS = 1000;

/** Elapsed times are reported to the microsecond: finer digits are clock noise. */
function roundToMicroseconds(ms: number): number {
  return Math.round(ms * US_PER_MS) / US_PER_MS;
}
