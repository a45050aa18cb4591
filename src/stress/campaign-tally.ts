/**
 * A campaign's records counted into its outcome table, class counts and coverage as they come:
 * by the campaign itself, run after run, and by `report merge`, over the records of its shards
 * in campaign order (which gives the same table as the campaign run unsharded).
 */
import type { Shard } from './campaign-spec.js';
import type { Exploration, Strategy } from './controlled/strategies.js';
import { type CampaignCoverage, CoverageTally } from './coverage/campaign-coverage.js';
import { type OutcomeClass, type OutcomeRow, OutcomeTable, isForbidden } from './outcome.js';
import type { RunRecord } from './run-record.js';
import type { StressMode } from './stress-mode.js';

export interface CampaignResult {
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  readonly seed: number;
  readonly shard: Shard | null;
  readonly runs: number;
  readonly table: OutcomeRow[];
  readonly classes: Record<OutcomeClass, number>;
  readonly records: RunRecord[];
  /** A forbidden outcome was seen (for a mutant: it was caught). */
  readonly caught: boolean;
  /** Runs executed when the first forbidden outcome was seen (1-based). */
  readonly caughtAtRun: number | null;
  /** What the strategy explored (dfs: schedules, and whether the bounded tree was exhausted). */
  readonly dfs: Exploration | null;
  /** The edge states the runs reached. */
  readonly coverage: CampaignCoverage;
  readonly elapsedMs: number;
  /** A stop was asked for (signal) before the campaign made all its runs: the table is partial. */
  readonly interrupted: boolean;
  /** The run under way when stopped that did not end within the grace (not in the table), or null. */
  readonly abandonedRun: number | null;
}

/** What names a campaign in its result. */
export interface CampaignIdentity {
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  readonly seed: number;
  readonly shard: Shard | null;
}

export class CampaignTally {
  readonly records: RunRecord[] = [];
  private readonly table = new OutcomeTable();
  private readonly coverage: CoverageTally;
  /** Runs made when the first forbidden outcome was seen (1-based). */
  caughtAtRun: number | null = null;
  interrupted = false;
  abandonedRun: number | null = null;

  constructor(private readonly id: CampaignIdentity) {
    this.coverage = new CoverageTally(id.mode);
  }

  add(record: RunRecord): void {
    this.records.push(record);
    this.coverage.add(record.coverage);
    this.table.add(record.outcomes, record.seed);
    if (this.caughtAtRun === null && isForbidden(record.outcomes)) this.caughtAtRun = this.records.length;
  }

  result(exploration: Exploration | null, elapsedMs: number): CampaignResult {
    const { id, table } = this;
    return {
      mode: id.mode,
      strategy: id.strategy,
      mutant: id.mutant,
      seed: id.seed,
      shard: id.shard,
      runs: this.records.length,
      table: table.rows(),
      classes: {
        acceptable: table.byClass('acceptable'),
        interesting: table.byClass('interesting'),
        forbidden: table.byClass('forbidden'),
        error: table.byClass('error'),
      },
      records: this.records,
      caught: this.caughtAtRun !== null,
      caughtAtRun: this.caughtAtRun,
      dfs: exploration,
      coverage: this.coverage.result(),
      elapsedMs,
      interrupted: this.interrupted,
      abandonedRun: this.abandonedRun,
    };
  }
}
