/**
 * Coverage as a campaign reports it: what one run reached (its threads' counters added up,
 * by edge state), and, over a campaign, how many runs reached each state, how often, and the
 * first run that did — with the states the mode cannot reach marked n/a and the applicable
 * states no run reached listed (what --min-coverage fails on).
 */
import { CoverageLayout } from '../../kernel/coverage-layout.js';
import type { StressMode } from '../stress-mode.js';
import { EDGE_STATES, type Structure, appliesTo } from './edge-states.js';

/** One run's hits per edge state id; states it did not reach are absent. */
export type RunCoverage = Readonly<Record<string, number>>;

/** A run's coverage from its threads' summed counters (kernel/coverage.ts's sumCoverage). */
export function runCoverage(sums: Float64Array): RunCoverage {
  const out: Record<string, number> = {};
  for (const s of EDGE_STATES) {
    if (s.edge === null) continue;
    const n = sums[CoverageLayout.floats[s.edge]]!;
    if (n > 0) out[s.id] = n;
  }
  return out;
}

export interface CoverageRow {
  readonly id: string;
  readonly structure: Structure;
  readonly what: string;
  /** Counted in the campaign's requirement; false when the mode cannot reach it (`reason`). */
  readonly applicable: boolean;
  readonly reason: string | null;
  /** Runs that reached it. */
  readonly runs: number;
  /** Times it was reached, over all runs. */
  readonly hits: number;
  /** The first run (1-based, in the order the campaign made them) that reached it. */
  readonly firstRun: number | null;
}

export interface CampaignCoverage {
  readonly mode: StressMode;
  readonly runs: number;
  readonly rows: CoverageRow[];
  /** Applicable states reached, and how many there are. */
  readonly reached: number;
  readonly applicable: number;
  /** Applicable states no run reached, by id. */
  readonly unreached: string[];
}

/** Counts runs' coverage into a campaign's, as the runs come. */
export class CoverageTally {
  private runs = 0;
  private readonly runsReaching = new Map<string, number>();
  private readonly hits = new Map<string, number>();
  private readonly first = new Map<string, number>();

  constructor(private readonly mode: StressMode) {}

  /** The next run's coverage (null: the run recorded none, e.g. it never started). */
  add(run: RunCoverage | null): void {
    this.runs++;
    if (run === null) return;
    for (const [id, n] of Object.entries(run)) {
      this.runsReaching.set(id, (this.runsReaching.get(id) ?? 0) + 1);
      this.hits.set(id, (this.hits.get(id) ?? 0) + n);
      if (!this.first.has(id)) this.first.set(id, this.runs);
    }
  }

  /** Whether an applicable state has been reached by some run so far. */
  reached(id: string): boolean {
    return this.runsReaching.has(id);
  }

  /** Runs so far that reached state `id`. */
  runsOf(id: string): number {
    return this.runsReaching.get(id) ?? 0;
  }

  result(): CampaignCoverage {
    const rows = EDGE_STATES.map((s): CoverageRow => {
      const applicable = appliesTo(s, this.mode);
      return {
        id: s.id,
        structure: s.structure,
        what: s.what,
        applicable,
        reason: applicable ? null : (s.notApplicable?.[this.mode] ?? 'not recorded by stress runs'),
        runs: this.runsReaching.get(s.id) ?? 0,
        hits: this.hits.get(s.id) ?? 0,
        firstRun: this.first.get(s.id) ?? null,
      };
    });
    const applicable = rows.filter((r) => r.applicable);
    const unreached = applicable.filter((r) => r.runs === 0).map((r) => r.id);
    return { mode: this.mode, runs: this.runs, rows, reached: applicable.length - unreached.length, applicable: applicable.length, unreached };
  }
}
