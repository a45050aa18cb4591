/** One run of a campaign as the campaign records it, whatever the mode that ran it. */
import type { Exploration, Strategy } from './controlled/strategies.js';
import type { CaseSize } from './controlled/shrink.js';
import type { RunCoverage } from './coverage/campaign-coverage.js';
import type { OutcomeClass, OutcomeKind } from './outcome.js';
import type { StressMode } from './stress-mode.js';
import type { Explanation } from './controlled/explain.js';

export interface ShrunkRecord {
  readonly from: CaseSize;
  readonly to: CaseSize;
  readonly schedule: string;
  readonly traceFile: string | null;
  readonly attempts: number;
}

export interface RunRecord {
  /** Index in the campaign (before sharding). */
  readonly index: number;
  readonly seed: number;
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  /** The configuration in one line. */
  readonly config: string;
  /** The configuration in full (a controlled scenario, or a free run's config and perturbation). */
  readonly scenario: unknown;
  readonly outcome: OutcomeKind;
  readonly cls: OutcomeClass;
  readonly outcomes: OutcomeKind[];
  readonly elapsedMs: number;
  /** Controlled: steps, trace hash, and whether a second run of the seed gave the same trace. */
  readonly steps: number | null;
  readonly traceHash: string | null;
  readonly deterministic: boolean | null;
  /** Controlled, failing: the schedule (choices), compactly. */
  readonly schedule: string | null;
  /** First lost page, mismatch or error, in words. */
  readonly detail: string | null;
  readonly traceFile: string | null;
  readonly shrunk: ShrunkRecord | null;
  /** The edge states the run reached (null: it recorded none). */
  readonly coverage: RunCoverage | null;
  /** Controlled, weak memory models: loads that read an older store than the newest. */
  readonly staleReads?: number;
  /** Controlled: why the per-step invariant broke (the shrunk run's, when shrunk), as data. */
  readonly explanation?: Explanation | null;
}

/** The runs of one campaign in one mode, made one at a time. */
export interface CampaignRuns {
  /** Run `index` of the campaign with seed `seed`; null when there is nothing left to run. */
  run(index: number, seed: number): Promise<RunRecord | null>;
  /** What the campaign explored, when its strategy explores a tree. */
  exploration(): Exploration | null;
}

/** The name part a campaign's trace files share: the mutant, or `unmutated`. */
export function mutantTag(mutant: { readonly name: string } | null): string {
  return mutant?.name ?? 'unmutated';
}
