/**
 * What the two checks of a run found, iteration after iteration: the dirty_log_test oracle
 * (src/checker/oracle.ts) and the byte-exact comparison of the copier's destination with guest
 * memory (src/userspace/dirty-copier.ts).
 */
import { assert } from '../base/assert.js';
import type { IterationVerdict, LostPage } from '../checker/oracle.js';
import type { CopyComparison, CopyMismatch } from '../userspace/dirty-copier.js';
import type { FindingTotals } from './run-summary.js';

/** Details a run keeps (the first ones: a failing run's first lost pages say the most); counts are always complete. */
export const MAX_RUN_DETAILS = 20;

/**
 * Pages lost in one iteration, each counted once. A lost page is a write no later record
 * reported. The oracle sees it when nothing reported the page in the whole iteration; the copy
 * check also when a write came after the page's last report.
 */
export function lostPageCount(verdict: Pick<IterationVerdict, 'lostIndices'>, comparison: Pick<CopyComparison, 'indices'>): number {
  const lost = new Set<number>(verdict.lostIndices);
  for (const g of comparison.indices) lost.add(g);
  return lost.size;
}

export class FindingsTally implements FindingTotals {
  lostPages = 0;
  wrongValues = 0;
  duplicates = 0;
  badEntries = 0;
  copyMismatches = 0;
  /** Pages reported that did not change (harmless, but the cost of over-reporting). */
  falsePositives = 0;
  readonly lost: LostPage[] = [];
  readonly mismatches: CopyMismatch[] = [];

  /** Add one iteration's verdicts; returns the pages it lost. */
  add(verdict: IterationVerdict, comparison: CopyComparison): number {
    assert(comparison.indices.length === comparison.mismatches, 'the copy check lists every mismatched page');
    assert(verdict.lostIndices.length === verdict.lostPages, 'the oracle lists every lost page');
    const lostPages = lostPageCount(verdict, comparison);
    this.lostPages += lostPages;
    this.wrongValues += verdict.wrongValues;
    this.duplicates += verdict.duplicates;
    this.badEntries += verdict.badEntries;
    this.copyMismatches += comparison.mismatches;
    this.falsePositives += verdict.falsePositives;
    for (const d of verdict.details) if (this.lost.length < MAX_RUN_DETAILS) this.lost.push(d);
    for (const d of comparison.details) if (this.mismatches.length < MAX_RUN_DETAILS) this.mismatches.push(d);
    return lostPages;
  }
}
