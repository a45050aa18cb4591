/**
 * The scheduler's one way of waiting during a controlled run: until a condition on the
 * participants' STATUS words holds, bounded, noticing a participant whose worker died.
 */
import { assert } from '../../base/assert.js';
import { now } from '../../base/clock.js';
import { yieldToEventLoop } from '../../platform/async-wait.js';
import type { ControlledWorkerHandle } from './participant-api.js';
import type { SchedulerToken } from './token.js';

/**
 * The scheduler blocks on the token (Node's main thread may) for at most this long at a time,
 * then gives the event loop a turn: a worker that crashed is only reported through an 'exit' or
 * 'error' event, which a thread blocked in Atomics.wait never sees, and timers (a test's own
 * timeout among them) must not be starved for a whole liveness bound.
 */
const BLOCK_SLICE_MS = 20;

/** How a wait ended: the condition held, the bound expired, or participant p's worker died. */
export type WaitOutcome = 'ok' | 'timeout' | number;

export class ParkWaiter {
  constructor(
    private readonly token: SchedulerToken,
    /** One per participant, in participant order. */
    private readonly handles: readonly ControlledWorkerHandle[],
  ) {}

  /**
   * Wait until `settled()` holds: 'ok', 'timeout', or the participant whose worker died.
   *
   * The decision is taken from the participants' STATUS words, never from counting PARKED_SEQ
   * bumps: a participant publishes PARKED (or FINISHED) and only then rings, so a ring can land
   * long after the status it announces — its thread preempted between the two stores. A start
   * barrier that sees every status settled may therefore leave a late START ring in flight; if
   * the first grant then waited for "a ring", it would return at once while the granted
   * participant was still running. From there the scheduler would be one ring behind: two
   * participants moving at once (a nondeterministic run), and a granted participant seen not
   * yet parked, so that the run is called a deadlock and abandoned while that participant is
   * still on its way to its next park — where it then waits for a grant that never comes. The
   * ring is only a doorbell here: a stale one merely wakes us to look again.
   */
  async until(settled: () => boolean, limitMs: number): Promise<WaitOutcome> {
    assert(limitMs >= 0, 'a wait bound is a duration');
    const deadline = now() + limitMs;
    for (;;) {
      // Read the doorbell before the condition: a status we miss is published before a ring
      // that comes after `seen`, so the wait below cannot sleep through it.
      const seen = this.token.parkedSeq();
      if (settled()) return 'ok';
      const left = deadline - now();
      if (left > 0 && (await this.token.waitPark(seen, Math.min(BLOCK_SLICE_MS, left)))) continue;
      // A whole slice without news: give the event loop a turn, so that a worker's 'error' or
      // 'exit' event is delivered (it will never ring again) and timers run, then look.
      await yieldToEventLoop();
      const dead = this.deadParticipant();
      if (dead !== null) return dead;
      if (now() >= deadline) return settled() ? 'ok' : 'timeout';
    }
  }

  /** The first participant whose worker crashed or exited, or null. */
  private deadParticipant(): number | null {
    for (let p = 0; p < this.handles.length; p++) if (this.handles[p]!.failure !== null) return p;
    return null;
  }
}
