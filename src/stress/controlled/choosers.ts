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
 *
 * Under a weak memory model a chooser also decides which store a load reads (read-from
 * decisions, 0 = the newest store): random and pct with a bias to the newest, replay as
 * recorded, dfs by branching. Recorded choices hold both kinds in one list: a participant id
 * (≥ 0), or a read-from decision i as −1 − i.
 */
import { Prng } from '../../base/prng.js';

export interface Chooser {
  /** Pick among `enabled` (ascending participant ids, never empty); `last` moved previously (−1 at first). */
  choose(step: number, enabled: readonly number[], last: number): number;
  /** Which of `n` (≥ 2) candidate stores participant `p`'s load of location `loc` reads: 0 = the newest. */
  chooseReadFrom(step: number, n: number, loc: number, p: number): number;
}

/** A read-from decision as it is recorded among the choices. */
export function readFromChoice(i: number): number {
  return -1 - i;
}

export function isReadFromChoice(c: number): boolean {
  return c < 0;
}

/** The candidate index a recorded read-from decision chose. */
export function readFromIndex(c: number): number {
  return -1 - c;
}

/** The default continuation: keep the last participant while it may move, else the lowest id. */
export function nonPreemptive(enabled: readonly number[], last: number): number {
  return enabled.includes(last) ? last : enabled[0]!;
}

/** Default share of read-from decisions that pick an older store than the newest. */
export const DEFAULT_STALE_RATE = 0.25;
const RATE_SCALE = 1 << 16;

/** With probability `rate`, one of the n − 1 older stores (uniformly), else the newest. */
function biasedReadFrom(prng: Prng, n: number, rate: number): number {
  return prng.below(RATE_SCALE) < rate * RATE_SCALE ? 1 + prng.below(n - 1) : 0;
}

export class RandomChooser implements Chooser {
  private readonly prng: Prng;

  constructor(
    seed: number,
    private readonly staleRate = DEFAULT_STALE_RATE,
  ) {
    this.prng = new Prng(seed);
  }

  choose(_step: number, enabled: readonly number[]): number {
    return enabled[this.prng.below(enabled.length)]!;
  }

  chooseReadFrom(_step: number, n: number, _loc?: number, _p?: number): number {
    return biasedReadFrom(this.prng, n, this.staleRate);
  }
}

export class PctChooser implements Chooser {
  private readonly priority: number[];
  /** Steps at which the running participant is demoted, ascending. */
  private readonly changePoints: number[];
  private nextChange = 0;
  /** Steps from which the next read-from decision reads an older store, ascending (PCT's change points, for loads). */
  private readonly stalePoints: number[];
  private nextStale = 0;
  private readonly prng: Prng;

  /** `staleDepth`: how many read-from decisions of a run read an older store (at most). */
  constructor(seed: number, participants: number, estimatedSteps: number, readonly depth: number, staleDepth = 1) {
    const prng = new Prng(seed);
    this.prng = prng;
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
    const stale: number[] = [];
    for (let i = 0; i < staleDepth; i++) stale.push(prng.below(k));
    this.stalePoints = stale.sort((a, b) => a - b);
  }

  chooseReadFrom(step: number, n: number, _loc?: number, _p?: number): number {
    if (this.nextStale >= this.stalePoints.length || this.stalePoints[this.nextStale]! > step) return 0;
    this.nextStale++;
    return 1 + this.prng.below(n - 1);
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
    detail?: string,
  ) {
    super(
      `replay diverged at step ${step}: ` +
        (detail ?? `recorded participant ${recorded} cannot move (enabled: ${enabled.join(', ') || 'none'})`),
    );
    this.name = 'ReplayDivergence';
  }
}

/** A strict replay that meets a read-from decision where the recording has something else. */
function readFromDivergence(step: number, recorded: number | undefined, n: number): ReplayDivergence {
  const what =
    recorded === undefined ? 'nothing' : isReadFromChoice(recorded) ? `read-from ~${readFromIndex(recorded)}` : `participant ${recorded}`;
  return new ReplayDivergence(step, recorded ?? -1, [], `a load chooses among ${n} stores, the recording has ${what}`);
}

export class ReplayChooser implements Chooser {
  private next = 0;
  /** Recorded choices skipped because they could not be taken (lenient mode). */
  skipped = 0;

  constructor(
    private readonly choices: readonly number[],
    private readonly strict: boolean,
  ) {}

  /** Recorded choices not taken yet: after a replay, choices the replayed run never reached. */
  get remaining(): number {
    return this.choices.length - this.next;
  }

  choose(step: number, enabled: readonly number[], last: number): number {
    while (this.next < this.choices.length) {
      const c = this.choices[this.next++]!;
      if (!isReadFromChoice(c) && enabled.includes(c)) return c;
      if (this.strict) throw isReadFromChoice(c) ? new ReplayDivergence(step, c, enabled, `a participant is chosen, the recording has read-from ~${readFromIndex(c)}`) : new ReplayDivergence(step, c, enabled);
      this.skipped++;
    }
    return nonPreemptive(enabled, last);
  }

  /**
   * Lenient (shrinking): a recorded participant where a load asks is left for the next
   * schedule choice and the load reads the newest store; an index past the candidates, or the
   * end of the recording, reads the newest too — the read-from analogue of not preempting.
   */
  chooseReadFrom(step: number, n: number, _loc?: number, _p?: number): number {
    const c = this.choices[this.next];
    if (c === undefined || !isReadFromChoice(c)) {
      if (this.strict && c !== undefined) throw readFromDivergence(step, c, n);
      return 0;
    }
    this.next++;
    const i = readFromIndex(c);
    if (i < n) return i;
    if (this.strict) throw readFromDivergence(step, c, n);
    this.skipped++;
    return 0;
  }
}
