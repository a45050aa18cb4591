/**
 * What userspace found in a controlled run: the oracle's and the destination check's counts,
 * the harvester variant's, and the first few details. The participant worker fills it as the
 * run goes (so an aborted run keeps what it saw) and returns it to the engine.
 */
import type { IterationVerdict, LostPage } from '../../checker/oracle.js';
import type { CopyMismatch } from '../../userspace/dirty-copier.js';
import type { HarvesterVariantStats } from '../harvesters/harvester-variants.js';

/** Details kept per run (counts are complete): enough to explain a failure in a report line. */
const MAX_DETAILS = 5;

export interface UserspaceReport {
  lostPages: number;
  wrongValues: number;
  copyMismatches: number;
  resetMismatches: number;
  badEntries: number;
  /** Records of a page already collected in the same collection (racing rings, emulated path). */
  duplicateRecords: number;
  variant: HarvesterVariantStats;
  /** Set when a vCPU was found wedged (its ring cannot be drained). */
  wedged: string | null;
  lost: LostPage[];
  mismatches: CopyMismatch[];
}

export function emptyUserspaceReport(): UserspaceReport {
  return {
    lostPages: 0,
    wrongValues: 0,
    copyMismatches: 0,
    resetMismatches: 0,
    badEntries: 0,
    duplicateRecords: 0,
    variant: { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 },
    wedged: null,
    lost: [],
    mismatches: [],
  };
}

/** Add one iteration's verification (the oracle's verdict, the destination comparison). */
export function addVerification(
  report: UserspaceReport,
  verdict: IterationVerdict,
  mismatch: { readonly mismatches: number; readonly details: readonly CopyMismatch[] },
): void {
  report.lostPages += verdict.lostPages;
  report.wrongValues += verdict.wrongValues;
  report.badEntries += verdict.badEntries;
  report.copyMismatches += mismatch.mismatches;
  for (const d of verdict.details) if (report.lost.length < MAX_DETAILS) report.lost.push(d);
  for (const d of mismatch.details) if (report.mismatches.length < MAX_DETAILS) report.mismatches.push(d);
}
