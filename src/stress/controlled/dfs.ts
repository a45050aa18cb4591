/**
 * Bounded exhaustive exploration (iterative context bounding, as CHESS does): every schedule of
 * one scenario with at most `preemptionBound` preemptions — switching away from a participant
 * that could have continued — enumerated depth-first, one run per schedule. Stateless: each
 * run re-executes from scratch, replaying the stack's prefix, and the runs being deterministic
 * is checked on the way (a prefix that offers different choices is a divergence).
 */
import { type Chooser, ReplayDivergence, nonPreemptive } from './choosers.js';

interface Frame {
  /** Candidate choices in exploration order: the non-preemptive one first. */
  readonly alternatives: readonly number[];
  index: number;
  /** Participant that moved before this step (−1 at the first). */
  readonly last: number;
  /** Preemptions taken before this step. */
  readonly preemptionsBefore: number;
}

export class DfsExplorer {
  private readonly frames: Frame[] = [];
  private position = 0;
  /** Distinct schedules started so far (a retried schedule counts once). */
  schedules = 0;
  /** Runs of the current schedule that the harness lost (see harnessFailed). */
  retries = 0;
  exhausted = false;
  /**
   * A schedule was given up after the harness failed it repeatedly: advancing past a run that
   * ended early drops the unexplored alternatives below where it ended, so the tree is not
   * fully explored even when nothing is left to try.
   */
  incomplete = false;
  private retryNext = false;

  constructor(readonly preemptionBound: number) {}

  private static isPreemption(choice: number, enabled: readonly number[], last: number): boolean {
    return last >= 0 && enabled.includes(last) && choice !== last;
  }

  /** A chooser for the next run. */
  nextRun(): Chooser {
    this.position = 0;
    if (!this.retryNext) this.schedules++;
    this.retryNext = false;
    return { choose: (step, enabled, last) => this.choose(step, enabled, last) };
  }

  private choose(step: number, enabled: readonly number[], last: number): number {
    if (this.position < this.frames.length) {
      const f = this.frames[this.position++]!;
      const c = f.alternatives[f.index]!;
      if (!enabled.includes(c) || f.last !== last) throw new ReplayDivergence(step, c, enabled);
      return c;
    }
    const prev = this.frames[this.position - 1];
    const preemptionsBefore =
      prev === undefined ? 0 : prev.preemptionsBefore + (DfsExplorer.isPreemption(prev.alternatives[prev.index]!, enabledOf(prev), prev.last) ? 1 : 0);
    const first = nonPreemptive(enabled, last);
    const alternatives = [first, ...enabled.filter((p) => p !== first)];
    this.frames.push({ alternatives, index: 0, last, preemptionsBefore });
    this.position++;
    return first;
  }

  /** The whole bounded tree was explored: nothing is left and no schedule was given up. */
  get complete(): boolean {
    return this.exhausted && !this.incomplete;
  }

  /**
   * After a run the harness failed (a worker lost, a participant stuck): it says nothing about
   * the schedule, and it ended wherever the failure struck — before the first choice, even —
   * so advancing would prune the tree below that point (all of it, at position 0). The same
   * schedule is run again instead: its prefix is still on the stack, and choices the failed run
   * added beyond it are the non-preemptive ones a retry takes anyway. After `maxRetries`
   * retries the schedule is given up (advance, marked incomplete), so that a schedule that
   * always hangs cannot hold the campaign. Returns true when the next run is a retry.
   */
  harnessFailed(maxRetries: number): boolean {
    if (this.retries < maxRetries) {
      this.retries++;
      this.retryNext = true;
      return true;
    }
    this.incomplete = true;
    this.advance();
    return false;
  }

  /** After a run: move to the next schedule within the bound; false once all are explored. */
  advance(): boolean {
    this.retries = 0;
    this.frames.length = this.position;
    while (this.frames.length > 0) {
      const f = this.frames[this.frames.length - 1]!;
      const enabled = enabledOf(f);
      while (++f.index < f.alternatives.length) {
        const extra = DfsExplorer.isPreemption(f.alternatives[f.index]!, enabled, f.last) ? 1 : 0;
        if (f.preemptionsBefore + extra <= this.preemptionBound) return true;
      }
      this.frames.pop();
    }
    this.exhausted = true;
    return false;
  }
}

/** The enabled set a frame was built from (its alternatives, in any order). */
function enabledOf(f: Frame): readonly number[] {
  return f.alternatives;
}
