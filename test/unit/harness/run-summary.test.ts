/** The run's summary, its iteration reports and its findings: pure functions of what a run collected. */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.js';
import type { IterationVerdict, LostPage } from '../../../src/checker/oracle.js';
import { FindingsTally, MAX_RUN_DETAILS, lostPageCount } from '../../../src/harness/findings-tally.js';
import { type RunCounters, iterationReport } from '../../../src/harness/iteration-report.js';
import { type PageTrackStatistics, summarizePageTrack } from '../../../src/harness/page-track-summary.js';
import { type RunConfig, validateRunConfig } from '../../../src/harness/run-config.js';
import { type RunStatistics, falsePositiveRate, lockHold, summarizeRun } from '../../../src/harness/run-summary.js';
import type { CopyComparison } from '../../../src/userspace/dirty-copier.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';

/** The JSON fields of a run's summary, in the order `--json` has always printed them. */
const SUMMARY_FIELDS = [
  'ok', 'seed', 'log', 'vcpus', 'iterations', 'memoryBytes', 'memslots', 'ringEntries', 'clearChunkPages', 'initiallySet',
  'ringWithBitmap', 'workload', 'path', 'mutants', 'guestWrites', 'guestStores', 'faults', 'spuriousFaults', 'pushes',
  'pagesHarvested', 'ringFullExits', 'stallMs', 'maxStallMs', 'resetCalls', 'entriesReset', 'resetMismatches', 'getCalls',
  'clearCalls', 'deviceWriters', 'deviceWrites', 'deviceWritesLost', 'badEntries', 'duplicates', 'duplicateRecords',
  'pagesCopied', 'pagesResent', 'falsePositives', 'falsePositiveRate', 'lostPages', 'wrongValues', 'copyMismatches',
  'kernelWarnings', 'kernelBugs', 'tlbFlushes', 'mmuLockMaxHoldUs', 'mmuLockTotalHoldUs', 'mmuLockHoldUs', 'elapsedMs',
  'lost', 'mismatches', 'pageTrack', 'error', 'smmPages', 'interrupted', 'selfReap',
];

function lostPage(offset: number): LostPage {
  return { slot: 1, offset, gfn: 0x40000 + offset, vcpu: 0, iteration: 1, value: 0, seed: 1, reason: 'unreported-write' };
}

function statistics(config: RunConfig, over: Partial<RunStatistics> = {}): RunStatistics {
  return {
    config,
    iterations: config.iterations,
    error: null,
    elapsedMs: 12.34567,
    vm: {
      getCalls: 4,
      clearCalls: 0,
      resetCalls: 3,
      warnings: 0,
      kernelBugs: 0,
      tlbFlushes: 7,
      mmuLockMaxHoldUs: 1.23456,
      mmuLockTotalHoldUs: 9.87654,
      mmuHoldGetMaxUs: 2,
      mmuHoldGetTotalUs: 5,
      mmuHoldClearMaxUs: 0,
      mmuHoldClearTotalUs: 0,
      mmuHoldResetMaxUs: 1.0004,
      mmuHoldResetTotalUs: 3,
    },
    vcpus: {
      instructions: 1000,
      stores: 1200,
      faults: 800,
      spuriousFaults: 2,
      pushes: 900,
      ringFullExits: 5,
      stallNs: 2_500_000.4,
      maxStallNs: 1_000_000,
    },
    devices: { writes: 30, lost: 1 },
    collector: { records: 880, resetCalls: 3, entriesReset: 880, resetMismatches: 0 },
    copier: { pagesCopied: 700, pagesResent: 7, duplicates: 11 },
    findings: { lostPages: 0, wrongValues: 0, duplicates: 13, badEntries: 0, copyMismatches: 0, lost: [], mismatches: [] },
    pageTrack: null,
    ...over,
  };
}

describe('summarizeRun', () => {
  const config = validateRunConfig({ seed: 5, iterations: 3 });

  it('keeps every JSON field, in the order --json has always printed them', () => {
    const s = summarizeRun(statistics(config));
    expect(Object.keys(s)).toEqual(SUMMARY_FIELDS);
    expect(Object.keys(s.mmuLockHoldUs)).toEqual(['get', 'clear', 'reset']);
    expect(Object.keys(s.mmuLockHoldUs.get)).toEqual(['calls', 'mean', 'max', 'total']);
  });

  it('describes the run from its configuration', () => {
    const s = summarizeRun(statistics(config));
    expect(s).toMatchObject({ ok: true, seed: 5, log: 'ring', vcpus: 2, iterations: 3, ringEntries: 4096, clearChunkPages: null, path: 'fault', mutants: [] });
    const clear = validateRunConfig({ seed: 5, log: 'clear', emulateAllStores: true, mutants: Mutant.NO_FINAL_STOP });
    expect(summarizeRun(statistics(clear))).toMatchObject({ log: 'clear', ringEntries: null, clearChunkPages: 1024, path: 'emulated', mutants: ['no-final-stop'] });
  });

  it('takes each counter from its source and converts units', () => {
    const s = summarizeRun(statistics(config));
    expect(s).toMatchObject({
      guestWrites: 1000,
      guestStores: 1200,
      faults: 800,
      spuriousFaults: 2,
      pushes: 900,
      pagesHarvested: 880,
      ringFullExits: 5,
      stallMs: 2.5,
      maxStallMs: 1,
      resetCalls: 3,
      entriesReset: 880,
      getCalls: 4,
      deviceWriters: 0,
      deviceWrites: 30,
      deviceWritesLost: 1,
      // The oracle's duplicates and the copier's, together; duplicateRecords only the copier's.
      duplicates: 24,
      duplicateRecords: 11,
      pagesCopied: 700,
      pagesResent: 7,
      falsePositives: 7,
      falsePositiveRate: 0.01,
      tlbFlushes: 7,
      mmuLockMaxHoldUs: 1.235,
      mmuLockTotalHoldUs: 9.877,
      elapsedMs: 12.346,
      pageTrack: null,
      error: null,
    });
    expect(s.mmuLockHoldUs).toEqual({
      get: { calls: 4, mean: 1.25, max: 2, total: 5 },
      clear: { calls: 0, mean: 0, max: 0, total: 0 },
      reset: { calls: 3, mean: 1, max: 1, total: 3 },
    });
  });

  it.each<[string, Partial<RunStatistics>]>([
    ['an error', { error: 'vCPU 0 thread died' }],
    ['an iteration short', { iterations: 2 }],
    ['a lost page', { findings: { lostPages: 1, wrongValues: 0, duplicates: 0, badEntries: 0, copyMismatches: 0, lost: [], mismatches: [] } }],
    ['a wrong value', { findings: { lostPages: 0, wrongValues: 1, duplicates: 0, badEntries: 0, copyMismatches: 0, lost: [], mismatches: [] } }],
    ['a copy mismatch', { findings: { lostPages: 0, wrongValues: 0, duplicates: 0, badEntries: 0, copyMismatches: 1, lost: [], mismatches: [] } }],
    ['a bad entry', { findings: { lostPages: 0, wrongValues: 0, duplicates: 0, badEntries: 1, copyMismatches: 0, lost: [], mismatches: [] } }],
    ['a reset count mismatch', { collector: { records: 1, resetCalls: 1, entriesReset: 1, resetMismatches: 1 } }],
  ])('is not ok with %s', (_what, over) => {
    expect(summarizeRun(statistics(config)).ok).toBe(true);
    expect(summarizeRun(statistics(config, over)).ok).toBe(false);
  });

  it('is not ok with a kernel warning or a kernel bug', () => {
    const base = statistics(config);
    expect(summarizeRun({ ...base, vm: { ...base.vm, warnings: 1 } }).ok).toBe(false);
    expect(summarizeRun({ ...base, vm: { ...base.vm, kernelBugs: 1 } }).ok).toBe(false);
  });

  it('is not ok when page write-tracking is not', () => {
    const track = summarizePageTrack(trackStatistics({ shadowMismatches: 1 }));
    expect(track.ok).toBe(false);
    const s = summarizeRun(statistics(config, { pageTrack: track }));
    expect(s.ok).toBe(false);
    expect(s.pageTrack).toBe(track);
  });

  it('asserts a run never completes more iterations than asked', () => {
    expect(() => summarizeRun(statistics(config, { iterations: 4 }))).toThrow(AssertionError);
  });

  it('copies the detail lists rather than sharing them with the run', () => {
    const lost = [lostPage(1)];
    const s = summarizeRun(statistics(config, { findings: { lostPages: 1, wrongValues: 0, duplicates: 0, badEntries: 0, copyMismatches: 0, lost, mismatches: [] } }));
    expect(s.lost).toEqual(lost);
    expect(s.lost).not.toBe(lost);
  });
});

describe('summary helpers', () => {
  it('falsePositiveRate keeps six decimals and is 0 when nothing was copied', () => {
    expect(falsePositiveRate(1, 3)).toBe(0.333333);
    expect(falsePositiveRate(5, 0)).toBe(0);
  });

  it('lockHold gives the mean per call, 0 without calls', () => {
    expect(lockHold(3, 2.00049, 10)).toEqual({ calls: 3, mean: 3.333, max: 2, total: 10 });
    expect(lockHold(0, 0, 0)).toEqual({ calls: 0, mean: 0, max: 0, total: 0 });
  });
});

function verdict(lostIndices: number[], details: LostPage[] = []): IterationVerdict {
  return { iteration: 1, lostPages: lostIndices.length, wrongValues: 1, falsePositives: 0, pagesReported: 9, pagesChanged: 8, duplicates: 2, badEntries: 0, details, lostIndices };
}

function comparison(indices: number[]): CopyComparison {
  return { mismatches: indices.length, details: indices.map((g) => ({ slot: 1, offset: g, gfn: 0x40000 + g, writer: 0 })), indices };
}

describe('findings', () => {
  it('count a page both checks flagged once', () => {
    expect(lostPageCount(verdict([1, 2]), comparison([2, 3]))).toBe(3);
    expect(lostPageCount(verdict([]), comparison([]))).toBe(0);
  });

  it('add up over iterations and keep the first details only', () => {
    const tally = new FindingsTally();
    const many = Array.from({ length: MAX_RUN_DETAILS + 5 }, (_, i) => lostPage(i));
    expect(tally.add(verdict([1, 2], many), comparison([2, 3]))).toBe(3);
    expect(tally.add(verdict([7]), comparison([]))).toBe(1);
    expect(tally).toMatchObject({ lostPages: 4, wrongValues: 2, duplicates: 4, badEntries: 0, copyMismatches: 2 });
    expect(tally.lost).toHaveLength(MAX_RUN_DETAILS);
    expect(tally.lost[0]).toBe(many[0]);
    expect(tally.mismatches.map((m) => m.offset)).toEqual([2, 3]);
  });

  it('assert that each check lists every page it counts', () => {
    const tally = new FindingsTally();
    expect(() => tally.add(verdict([1]), { ...comparison([2]), mismatches: 2 })).toThrow(AssertionError);
    expect(() => tally.add({ ...verdict([1]), lostPages: 2 }, comparison([]))).toThrow(AssertionError);
  });
});

describe('iterationReport', () => {
  it('reports the work of the iteration as differences of the run counters', () => {
    const start: RunCounters = { guestWrites: 100, deviceWrites: 3, records: 50, ringFullExits: 1, collections: 4, pagesCopied: 40, pagesResent: 2 };
    const end: RunCounters = { guestWrites: 400, deviceWrites: 10, records: 250, ringFullExits: 3, collections: 9, pagesCopied: 200, pagesResent: 5 };
    const findings = { pagesReported: 190, pagesChanged: 180, lostPages: 0, wrongValues: 0, copyMismatches: 0, trackMismatches: 0 };
    expect(iterationReport(2, start, end, findings, 10.00049)).toEqual({
      iteration: 2,
      guestWrites: 300,
      deviceWrites: 7,
      recordsCollected: 200,
      ringFullExits: 2,
      collections: 5,
      pagesReported: 190,
      pagesChanged: 180,
      pagesCopied: 160,
      pagesResent: 3,
      lostPages: 0,
      wrongValues: 0,
      copyMismatches: 0,
      trackMismatches: 0,
      elapsedMs: 10,
    });
  });

  it('asserts the run counters never go down', () => {
    const start: RunCounters = { guestWrites: 100, deviceWrites: 0, records: 50, ringFullExits: 0, collections: 4, pagesCopied: 40, pagesResent: 2 };
    const findings = { pagesReported: 0, pagesChanged: 0, lostPages: 0, wrongValues: 0, copyMismatches: 0, trackMismatches: 0 };
    expect(() => iterationReport(1, start, { ...start, records: 49 }, findings, 1)).toThrow(AssertionError);
    expect(() => iterationReport(1, start, start, findings, 1)).not.toThrow();
  });
});

function trackStatistics(checks: Partial<PageTrackStatistics['checks']> = {}, writes = { tracked: 10, notified: 10 }): PageTrackStatistics {
  return {
    trackPages: 4,
    candidates: 5,
    trackCountTotal: 4,
    maxTrackCount: 1,
    kernel: {
      adds: 6,
      removes: 2,
      overflowWarnings: 0,
      underflowWarnings: 0,
      trackedGfns: 4,
      activeNotifiers: 2,
      notifiersRegistered: 3,
      notifiersUnregistered: 1,
      gracePeriods: 1,
      gracePeriodsWaited: 1,
      graceWaitTotalMs: 0.5,
      graceWaitMaxMs: 0.12345,
      removeRegionNotifications: 0,
      notifiedWrites: 20,
      trackedWrites: writes.tracked,
      notifierCalls: 40,
    },
    shadow: { syncs: 10, refetchDiffered: 0, ignoredWrites: 1, pagesShadowed: 5, pagesUnshadowed: 1, pagesDropped: 0, removeRegions: 0 },
    notifications: writes.notified,
    rings: { softFullRequests: 0, hardFullWaits: 0 },
    checks: {
      notificationsLost: 0,
      notificationOrderErrors: 0,
      mirrorMismatches: 0,
      shadowMismatches: 0,
      rotations: 1,
      probeRegistrations: 1,
      probeDeliveries: 3,
      graceViolations: 0,
      details: [],
      ...checks,
    },
  };
}

describe('summarizePageTrack', () => {
  it('is ok when every check holds, and rounds the grace wait', () => {
    const s = summarizePageTrack(trackStatistics());
    expect(s.ok).toBe(true);
    expect(Object.keys(s)[0]).toBe('ok');
    expect(s).toMatchObject({ trackPages: 4, candidates: 5, trackedGfns: 4, notifications: 10, trackedWrites: 10, graceWaitMaxMs: 0.123, probeDeliveries: 3 });
  });

  it.each<[string, Partial<PageTrackStatistics['checks']>]>([
    ['a shadow mismatch', { shadowMismatches: 1 }],
    ['a lost notification', { notificationsLost: 1 }],
    ['a notification out of order', { notificationOrderErrors: 1 }],
    ['a mirror mismatch', { mirrorMismatches: 1 }],
    ['a grace-period violation', { graceViolations: 1 }],
  ])('is not ok with %s', (_what, checks) => {
    expect(summarizePageTrack(trackStatistics(checks)).ok).toBe(false);
  });

  it('is not ok when a tracked write was not notified', () => {
    expect(summarizePageTrack(trackStatistics({}, { tracked: 11, notified: 10 })).ok).toBe(false);
  });
});
