/**
 * Scheduling strategies: at each step, pick one participant among those that may move.
 *
 *  - random: uniformly among the enabled ones (seeded);
 *  - pct: probabilistic concurrency testing (Burckhardt et al.): random distinct priorities, the
 *    highest enabled one runs, and at d − 1 random change points the running participant drops
 *    below everyone — finds any bug of depth d with probability ≥ 1/(n·k^(d−1));
 *  - replay: follow a recorded list of choices (strict: a recorded choice that is not enabled
 *    means the run diverged; lenient, for shrinking: skip it), then continue without preempting;
 *  - dfs: see dfs.ts.
 */
import { Prng } from '../../base/prng.js';

export interface Chooser {
  /** Pick among `enabled` (ascending participant ids, never empty); `last` moved previously (−1 at first). */
  choose(step: number, enabled: readonly number[], last: number): number;
}

/** The default continuation: keep the last participant while it may move, else the lowest id. */
export function nonPreemptive(enabled: readonly number[], last: number): number {
  return enabled.includes(last) ? last : enabled[0]!;
}

export class RandomChooser implements Chooser {
  private readonly prng: Prng;

  constructor(seed: number) {
    this.prng = new Prng(seed);
  }

  choose(_step: number, enabled: readonly number[]): number {
    return enabled[this.prng.below(enabled.length)]!;
  }
}

export class PctChooser implements Chooser {
  private readonly priority: number[];
  /** Steps at which the running participant is demoted, ascending. */
  private readonly changePoints: number[];
  private nextChange = 0;

  constructor(seed: number, participants: number, estimatedSteps: number, readonly depth: number) {
    const prng = new Prng(seed);
    const d = Math.max(1, depth);
    // Initial priorities d .. d + n − 1 in random order; demoted ones get d − 1, d − 2, ... 1.
    const order = Array.from({ length: participants }, (_, i) => d + i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = prng.below(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    this.priority = order;
    const k = Math.max(2, estimatedSteps);
    const points = new Set<number>();
    while (points.size < Math.min(d - 1, k - 1)) points.add(1 + prng.below(k - 1));
    this.changePoints = [...points].sort((a, b) => a - b);
  }

  private highest(enabled: readonly number[]): number {
    let best = enabled[0]!;
    for (const p of enabled) if (this.priority[p]! > this.priority[best]!) best = p;
    return best;
  }

  choose(step: number, enabled: readonly number[]): number {
    while (this.nextChange < this.changePoints.length && this.changePoints[this.nextChange]! <= step) {
      // Demote whoever would run now below every participant not yet demoted.
      this.priority[this.highest(enabled)] = this.depth - 1 - this.nextChange;
      this.nextChange++;
    }
    return this.highest(enabled);
  }
}

/** A replay whose recorded choice was not enabled: the run is not the recorded one. */
export class ReplayDivergence extends Error {
  constructor(
    readonly step: number,
    readonly recorded: number,
    readonly enabled: readonly number[],
  ) {
    super(`replay diverged at step ${step}: recorded participant ${recorded} cannot move (enabled: ${enabled.join(', ') || 'none'})`);
    this.name = 'ReplayDivergence';
  }
}

export class ReplayChooser implements Chooser {
  private next = 0;
  /** Recorded choices skipped because they could not move (lenient mode). */
  skipped = 0;

  constructor(
    private readonly choices: readonly number[],
    private readonly strict: boolean,
  ) {}

  choose(step: number, enabled: readonly number[], last: number): number {
    while (this.next < this.choices.length) {
      const c = this.choices[this.next++]!;
      if (enabled.includes(c)) return c;
      if (this.strict) throw new ReplayDivergence(step, c, enabled);
      this.skipped++;
    }
    return nonPreemptive(enabled, last);
  }
}
