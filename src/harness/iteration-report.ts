/**
 * One iteration's line of a run (`onIteration`): the work done in it, as differences of the
 * run's counters at its start and at its end, and what the checks found in it. Pure.
 */
import { assert } from '../base/assert.js';
import { round3 } from '../userspace/guest-fleet.js';

export interface IterationReport {
  readonly iteration: number;
  readonly guestWrites: number;
  readonly deviceWrites: number;
  readonly recordsCollected: number;
  readonly ringFullExits: number;
  readonly collections: number;
  readonly pagesReported: number;
  readonly pagesChanged: number;
  readonly pagesCopied: number;
  readonly pagesResent: number;
  readonly lostPages: number;
  readonly wrongValues: number;
  readonly copyMismatches: number;
  /** Page write-tracking: shadow and notification-mirror mismatches (0 without --track-pages). */
  readonly trackMismatches: number;
  readonly elapsedMs: number;
}

/** The run's running counters, read at an iteration's start and end. */
export interface RunCounters {
  readonly guestWrites: number;
  readonly deviceWrites: number;
  readonly records: number;
  readonly ringFullExits: number;
  readonly collections: number;
  readonly pagesCopied: number;
  readonly pagesResent: number;
}

/** What the checks said about one iteration. */
export interface IterationFindings {
  readonly pagesReported: number;
  readonly pagesChanged: number;
  /** Each page once that either check flagged (findings-tally.ts). */
  readonly lostPages: number;
  readonly wrongValues: number;
  readonly copyMismatches: number;
  readonly trackMismatches: number;
}

export function iterationReport(
  iteration: number,
  start: RunCounters,
  end: RunCounters,
  findings: IterationFindings,
  elapsedMs: number,
): IterationReport {
  assert(
    end.guestWrites >= start.guestWrites && end.deviceWrites >= start.deviceWrites && end.records >= start.records &&
      end.ringFullExits >= start.ringFullExits && end.collections >= start.collections && end.pagesCopied >= start.pagesCopied &&
      end.pagesResent >= start.pagesResent,
    `iteration ${iteration}: a run counter went down`,
  );
  return {
    iteration,
    guestWrites: end.guestWrites - start.guestWrites,
    deviceWrites: end.deviceWrites - start.deviceWrites,
    recordsCollected: end.records - start.records,
    ringFullExits: end.ringFullExits - start.ringFullExits,
    collections: end.collections - start.collections,
    pagesReported: findings.pagesReported,
    pagesChanged: findings.pagesChanged,
    pagesCopied: end.pagesCopied - start.pagesCopied,
    pagesResent: end.pagesResent - start.pagesResent,
    lostPages: findings.lostPages,
    wrongValues: findings.wrongValues,
    copyMismatches: findings.copyMismatches,
    trackMismatches: findings.trackMismatches,
    elapsedMs: round3(elapsedMs),
  };
}
