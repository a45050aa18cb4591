/**
 * A campaign's outcome histogram in shared memory, for a live view: the campaign's thread adds
 * each run's outcomes as it ends, a page reads the counts on its own (no message per run).
 *
 *   word 0: runs done   word 1: stop requested (a reader sets it; the campaign ends after
 *   the run in progress)   word 2 + i: runs whose primary outcome is OUTCOME_KINDS[i]
 */
import { OUTCOMES, type OutcomeKind } from './outcome.js';

export const OUTCOME_KINDS = Object.keys(OUTCOMES) as OutcomeKind[];
export const HistogramWords = { RUNS: 0, STOP: 1, FIRST_COUNT: 2 } as const;

export function histogramBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((HistogramWords.FIRST_COUNT + OUTCOME_KINDS.length) * Int32Array.BYTES_PER_ELEMENT);
}

/** Count a run under its primary (most severe) outcome, as the CLI's outcome table does. */
export function addRun(h: Int32Array, outcome: OutcomeKind): void {
  Atomics.add(h, HistogramWords.FIRST_COUNT + OUTCOME_KINDS.indexOf(outcome), 1);
  Atomics.add(h, HistogramWords.RUNS, 1);
}

export function stopRequested(h: Int32Array): boolean {
  return Atomics.load(h, HistogramWords.STOP) !== 0;
}

/** The counts by outcome (non-zero only). */
export function readHistogram(h: Int32Array): Partial<Record<OutcomeKind, number>> {
  const out: Partial<Record<OutcomeKind, number>> = {};
  OUTCOME_KINDS.forEach((k, i) => {
    const n = Atomics.load(h, HistogramWords.FIRST_COUNT + i);
    if (n > 0) out[k] = n;
  });
  return out;
}
