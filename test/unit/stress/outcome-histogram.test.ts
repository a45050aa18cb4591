/** The shared outcome histogram: each run counted once, under its primary outcome; the stop word. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HistogramWords, OUTCOME_KINDS, addRun, histogramBuffer, readHistogram, stopRequested } from '../../../src/stress/outcome-histogram.js';

describe('outcome histogram', () => {
  it('counts every run once, under its outcome, and the counts add up to the runs', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...OUTCOME_KINDS), { maxLength: 200 }), (runs) => {
        const h = new Int32Array(histogramBuffer());
        for (const o of runs) addRun(h, o);
        const counts = readHistogram(h);
        expect(Atomics.load(h, HistogramWords.RUNS)).toBe(runs.length);
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(runs.length);
        for (const k of OUTCOME_KINDS) expect(counts[k] ?? 0).toBe(runs.filter((o) => o === k).length);
      }),
    );
  });

  it('reports a stop asked through the stop word', () => {
    const h = new Int32Array(histogramBuffer());
    expect(stopRequested(h)).toBe(false);
    Atomics.store(h, HistogramWords.STOP, 1);
    expect(stopRequested(h)).toBe(true);
  });
});
