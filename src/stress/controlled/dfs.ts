/**
 * Bounded exhaustive exploration (iterative context bounding, as CHESS does): every schedule of
 * one scenario with at most `preemptionBound` preemptions — switching away from a participant
 * that could have continued — enumerated depth-first, one run per schedule. Stateless: each
 * run re-executes from scratch, replaying the stack's prefix, and the runs being deterministic
 * is checked on the way (a prefix that offers different choices is a divergence).
 *
 * Under a weak memory model, which store a load reads is a branch of the same stack (loom's
 * single path of schedule and load branches): its alternatives are the candidate stores, the
 * newest first, and reading an older one counts against `staleBound` as a preemption counts
 * against `preemptionBound`.
 */
import { type Chooser, ReplayDivergence, nonPreemptive } from './choosers.js';

interface Frame {
  /** A schedule choice, or which store a load reads. */
  readonly readFrom: boolean;
  /** Candidate choices in exploration order: the non-preemptive one (or the newest store) first. */
  readonly alternatives: readonly number[];
  index: number;
  /** Participant that moved before this step (−1 at the first); for a load, the one loading. */
  readonly last: number;
  /** Preemptions taken before this step. */
  readonly preemptionsBefore: number;
  /** Loads that read an older store than the newest, before this step. */
  readonly staleBefore: number;
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

  constructor(
    readonly preemptionBound: number,
    readonly staleBound = 0,
  ) {}

  private static isPreemption(choice: number, enabled: readonly number[], last: number): boolean {
    return last >= 0 && enabled.includes(last) && choice !== last;
  }

  /** What taking alternative `i` of frame `f` costs: [preemptions, stale reads]. */
  private static cost(f: Frame, i: number): [number, number] {
    if (f.readFrom) return [0, f.alternatives[i]! > 0 ? 1 : 0];
    return [DfsExplorer.isPreemption(f.alternatives[i]!, enabledOf(f), f.last) ? 1 : 0, 0];
  }

  /** A chooser for the next run. */
  nextRun(): Chooser {
    this.position = 0;
    if (!this.retryNext) this.schedules++;
    this.retryNext = false;
    return {
      choose: (step, enabled, last) => this.choose(step, enabled, last),
      chooseReadFrom: (step, n, _loc, p) => this.chooseReadFrom(step, n, p),
    };
  }

  private choose(step: number, enabled: readonly number[], last: number): number {
    if (this.position < this.frames.length) {
      const f = this.frames[this.position++]!;
      const c = f.alternatives[f.index]!;
      if (f.readFrom) throw new ReplayDivergence(step, c, enabled, 'a participant is chosen where the explored prefix has a load');
      if (!enabled.includes(c) || f.last !== last) throw new ReplayDivergence(step, c, enabled);
      return c;
    }
    const first = nonPreemptive(enabled, last);
    this.push(false, [first, ...enabled.filter((p) => p !== first)], last);
    return first;
  }

  private chooseReadFrom(step: number, n: number, p: number): number {
    if (this.position < this.frames.length) {
      const f = this.frames[this.position++]!;
      if (!f.readFrom || f.alternatives.length !== n || f.last !== p) {
        throw new ReplayDivergence(step, f.alternatives[f.index]!, [], `a load of participant ${p} chooses among ${n} stores where the explored prefix differs`);
      }
      return f.alternatives[f.index]!;
    }
    this.push(true, Array.from({ length: n }, (_, i) => i), p);
    return 0;
  }

  private push(readFrom: boolean, alternatives: number[], last: number): void {
    const prev = this.frames[this.position - 1];
    const [p, s] = prev === undefined ? [0, 0] : DfsExplorer.cost(prev, prev.index);
    this.frames.push({
      readFrom,
      alternatives,
      index: 0,
      last,
      preemptionsBefore: (prev?.preemptionsBefore ?? 0) + p,
      staleBefore: (prev?.staleBefore ?? 0) + s,
    });
    this.position++;
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

  /** After a run: move to the next schedule within the bounds; false once all are explored. */
  advance(): boolean {
    this.retries = 0;
    this.frames.length = this.position;
    while (this.frames.length > 0) {
      const f = this.frames[this.frames.length - 1]!;
      while (++f.index < f.alternatives.length) {
        const [p, s] = DfsExplorer.cost(f, f.index);
        if (f.preemptionsBefore + p <= this.preemptionBound && f.staleBefore + s <= this.staleBound) return true;
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
