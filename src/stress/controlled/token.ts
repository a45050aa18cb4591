/**
 * The token protocol of a controlled run, both sides of it.
 *
 * Participant side (a worker): at every step point it publishes where it is, marks itself
 * PARKED, rings the scheduler, and blocks on its own GRANT word until the scheduler bumps it.
 * Scheduler side (the main thread): waits until the participant it granted has parked again
 * (or finished) — as its STATUS word says; the ring only wakes the scheduler, and may come late
 * — then grants the next one. Only the granted participant ever runs, and every
 * hand-off goes through Atomics, so each move happens-after the previous one: a run is a pure
 * function of the sequence of grants.
 */
import { ParticipantLayout, ParticipantStatus, SchedulerTokenLayout, schedulerTokenBytes } from './token-layout.js';
import { SharedBlock } from '../../abi/layout.js';
import { canBlock } from '../../kernel/sync.js';
import { waitAsyncWhileEqual } from '../../platform/async-wait.js';

const S = SchedulerTokenLayout.words;
const P = ParticipantLayout.words;

/** Thrown out of a park when the scheduler abandons the run: unwinds the participant's program. */
export class RunAborted extends Error {
  constructor() {
    super('controlled run aborted by the scheduler');
    this.name = 'RunAborted';
  }
}

/**
 * A participant waits this long for a grant before concluding the scheduler is gone. The
 * scheduler's own bounds (engine.ts) are far shorter: it abandons a run, and so releases every
 * participant, long before this.
 */
const GRANT_LIVENESS_MS = 120_000;
/** Re-check ABORT and the liveness bound this often while parked (a grant wakes at once). */
const GRANT_WAIT_SLICE_MS = 250;

/** Participant p's block of a token (ParticipantLayout), after the scheduler's block. */
export function participantBlock(buffer: SharedArrayBuffer, p: number): SharedBlock<keyof typeof ParticipantLayout.words, never> {
  return new SharedBlock(ParticipantLayout, buffer, SchedulerTokenLayout.bytes + p * ParticipantLayout.bytes);
}

/** The participant's side: park at a step point until granted. */
export class ParticipantToken {
  private readonly sched: Int32Array;
  private readonly self: Int32Array;

  constructor(buffer: SharedArrayBuffer, readonly participant: number) {
    this.sched = new SharedBlock(SchedulerTokenLayout, buffer).i32;
    this.self = participantBlock(buffer, participant).i32;
  }

  /** Park at `step` until the scheduler grants a move; throws RunAborted if the run is abandoned. */
  park(step: number, a: number, b: number): void {
    const self = this.self;
    const grant = Atomics.load(self, P.GRANT);
    self[P.STEP] = step;
    self[P.ARG_A] = a | 0;
    self[P.ARG_B] = b | 0;
    Atomics.store(self, P.STATUS, ParticipantStatus.PARKED);
    this.ring();
    const deadline = performance.now() + GRANT_LIVENESS_MS;
    while (Atomics.load(self, P.GRANT) === grant) {
      // The scheduler grants only the participants it sees parked when it abandons a run. One
      // that parks after that — it was granted and overran the step bound, or its worker took
      // the run message late — is never granted: it must see ABORT by itself, or it would hold
      // its worker (and the pool's next run) for the whole liveness bound. Checked after our
      // PARKED store, which the scheduler's abort reads after its ABORT store: one of the two
      // sides always sees the other.
      if (Atomics.load(this.sched, S.ABORT) !== 0) throw new RunAborted();
      if (performance.now() > deadline) throw new Error(`participant ${this.participant}: no grant for ${GRANT_LIVENESS_MS} ms`);
      Atomics.wait(self, P.GRANT, grant, GRANT_WAIT_SLICE_MS);
    }
    // STATUS is RUNNING already: grant() stores it before bumping GRANT, and must, so that the
    // scheduler's wait for this move never reads the PARKED it is granting from.
    if (Atomics.load(this.sched, S.ABORT) !== 0) throw new RunAborted();
  }

  /** The scheduler's answer to the READ_FROM park just granted. */
  decision(): number {
    return this.self[P.DECISION]!;
  }

  /** The program ended: the scheduler stops considering this participant. */
  finish(): void {
    Atomics.store(this.self, P.STATUS, ParticipantStatus.FINISHED);
    this.ring();
  }

  private ring(): void {
    Atomics.add(this.sched, S.PARKED_SEQ, 1);
    Atomics.notify(this.sched, S.PARKED_SEQ);
  }
}

/** The scheduler's side of the token, in the main thread. */
export class SchedulerToken {
  readonly buffer: SharedArrayBuffer;
  private readonly sched: Int32Array;
  private readonly parts: Int32Array[] = [];

  constructor(readonly participants: number) {
    this.buffer = new SharedArrayBuffer(schedulerTokenBytes(participants));
    this.sched = new SharedBlock(SchedulerTokenLayout, this.buffer).i32;
    for (let p = 0; p < participants; p++) this.parts.push(participantBlock(this.buffer, p).i32);
  }

  status(p: number): number {
    return Atomics.load(this.parts[p]!, P.STATUS);
  }

  step(p: number): number {
    return this.parts[p]![P.STEP]!;
  }

  argA(p: number): number {
    return this.parts[p]![P.ARG_A]!;
  }

  argB(p: number): number {
    return this.parts[p]![P.ARG_B]!;
  }

  parkedSeq(): number {
    return Atomics.load(this.sched, S.PARKED_SEQ);
  }

  /** Whether every participant is parked or finished (nobody is running). */
  quiescent(): boolean {
    for (let p = 0; p < this.participants; p++) {
      const s = this.status(p);
      if (s !== ParticipantStatus.PARKED && s !== ParticipantStatus.FINISHED) return false;
    }
    return true;
  }

  allFinished(): boolean {
    for (let p = 0; p < this.participants; p++) if (this.status(p) !== ParticipantStatus.FINISHED) return false;
    return true;
  }

  /** Answer participant `p`'s READ_FROM park (before granting it): candidate `i`. */
  setDecision(p: number, i: number): void {
    this.parts[p]![P.DECISION] = i;
  }

  /** Let parked participant `p` make one move. */
  grant(p: number): void {
    const w = this.parts[p]!;
    Atomics.store(w, P.STATUS, ParticipantStatus.RUNNING);
    Atomics.add(w, P.GRANT, 1);
    Atomics.notify(w, P.GRANT);
  }

  /**
   * Wait until PARKED_SEQ moves past `seen` (someone rang: parked or finished, now or earlier),
   * at most `timeoutMs`. Blocks where the thread may (Node's main thread), otherwise waits
   * asynchronously. The engine calls it with short slices, and re-reads the STATUS words after
   * every wake-up.
   */
  async waitPark(seen: number, timeoutMs: number): Promise<boolean> {
    if (canBlock) {
      const deadline = performance.now() + timeoutMs;
      while (Atomics.load(this.sched, S.PARKED_SEQ) === seen) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        Atomics.wait(this.sched, S.PARKED_SEQ, seen, left);
      }
      return true;
    }
    return waitAsyncWhileEqual(this.sched, S.PARKED_SEQ, seen, timeoutMs);
  }

  /**
   * Abandon the run: every parked participant is granted and unwinds with RunAborted; one that
   * parks later (or starts only now) sees ABORT and unwinds by itself.
   */
  abort(): void {
    Atomics.store(this.sched, S.ABORT, 1);
    for (let p = 0; p < this.participants; p++) {
      if (this.status(p) === ParticipantStatus.PARKED) this.grant(p);
    }
  }
}
