/** Outcome classes and the outcome table. */
import { describe, expect, it } from 'vitest';
import { OUTCOMES, OutcomeTable, isForbidden, outcomeClass, primaryOutcome } from '../../../src/stress/outcome.js';
import { classifyFree } from '../../../src/stress/free/free-run.js';
import type { RunSummary } from '../../../src/harness/run.js';

describe('outcomes', () => {
  it('protocol violations are forbidden, tolerated oddities interesting', () => {
    for (const k of ['lost-page', 'reset-mismatch', 'wedged-vcpu', 'copy-mismatch', 'kernel-bug'] as const) expect(outcomeClass(k)).toBe('forbidden');
    for (const k of ['duplicates', 'ring-full-page', 'long-stall'] as const) expect(outcomeClass(k)).toBe('interesting');
    expect(outcomeClass('clean')).toBe('acceptable');
    expect(outcomeClass('harness-error')).toBe('error');
  });

  it('a run counts under its most severe outcome', () => {
    expect(primaryOutcome([])).toBe('clean');
    expect(primaryOutcome(['duplicates', 'lost-page', 'ring-full-page'])).toBe('lost-page');
    expect(primaryOutcome(['duplicates', 'harness-error'])).toBe('harness-error');
    expect(primaryOutcome(['harness-error', 'wedged-vcpu'])).toBe('wedged-vcpu');
    expect(isForbidden(['duplicates'])).toBe(false);
    expect(isForbidden(['duplicates', 'kernel-warning'])).toBe(true);
  });

  it('the table counts runs per primary outcome, in severity order, with the first seed', () => {
    const t = new OutcomeTable();
    t.add([], 10);
    t.add(['duplicates'], 11);
    t.add(['lost-page', 'duplicates'], 12);
    t.add([], 13);
    t.add(['lost-page'], 14);
    expect(t.rows()).toEqual([
      { outcome: 'lost-page', cls: 'forbidden', runs: 2, firstSeed: 12 },
      { outcome: 'duplicates', cls: 'interesting', runs: 1, firstSeed: 11 },
      { outcome: 'clean', cls: 'acceptable', runs: 2, firstSeed: 10 },
    ]);
    expect(t.byClass('forbidden')).toBe(2);
    expect(t.rows().reduce((n, r) => n + r.runs, 0)).toBe(5);
    expect(Object.keys(OUTCOMES)).toContain('step-limit');
  });
});

describe('classifying a free run', () => {
  const base = {
    lostPages: 0, copyMismatches: 0, wrongValues: 0, resetMismatches: 0, badEntries: 0, kernelBugs: 0, kernelWarnings: 0,
    error: null, ringFullExits: 0, path: 'fault', duplicateRecords: 0, maxStallMs: 0,
  } as unknown as RunSummary;

  it('a clean run shows nothing', () => {
    expect(classifyFree(base, null)).toEqual([]);
  });

  it('each violation, and the wedge errors', () => {
    expect(classifyFree({ ...base, lostPages: 1, resetMismatches: 2 }, null)).toEqual(['lost-page', 'reset-mismatch']);
    expect(classifyFree({ ...base, error: 'wedged vCPU 1: its ring is still soft-full' }, null)).toEqual(['wedged-vcpu']);
    expect(classifyFree({ ...base, error: 'no guest progress for 15000 ms in iteration 2' }, null)).toEqual(['wedged-vcpu']);
    expect(classifyFree({ ...base, error: 'starting vCPU 0: timed out' }, null)).toEqual(['harness-error']);
  });

  it('the notable but allowed ones', () => {
    expect(classifyFree({ ...base, ringFullExits: 3, duplicateRecords: 1, maxStallMs: 25 }, { hostileRewrites: 1, unalignedClears: 0, unalignedRefused: 2, unalignedAccepted: 0 })).toEqual([
      'ring-full-page', 'duplicates', 'long-stall', 'hostile-userspace', 'unaligned-clear-refused',
    ]);
    // The emulated path records after the store: exit 31 leaves no page logged ahead of its write.
    expect(classifyFree({ ...base, ringFullExits: 3, path: 'emulated' } as RunSummary, null)).toEqual([]);
  });
});
