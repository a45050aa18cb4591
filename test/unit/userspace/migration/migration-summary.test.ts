/** A migration's round reports and summary, and a dirty-rate result: pure functions of what was measured. */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../../../src/abi/constants.js';
import { AssertionError } from '../../../../src/base/assert.js';
import { MiB } from '../../../../src/base/units.js';
import { validateDirtyRateConfig } from '../../../../src/userspace/migration/dirty-rate-config.js';
import { dirtyRateResult } from '../../../../src/userspace/migration/dirty-rate.js';
import { validateMigrationConfig } from '../../../../src/userspace/migration/migration-config.js';
import type { RoundReport } from '../../../../src/userspace/migration/migration-report.js';
import {
  type MigrationStatistics,
  type RoundMeasures,
  dirtyLimitSummary,
  roundReport,
  summarizeMigration,
} from '../../../../src/userspace/migration/migration-summary.js';
import { Mutant } from '../../../../src/userspace/known-bugs.js';

/** The JSON fields of a migration's summary, in the order `--json` has always printed them. */
const SUMMARY_FIELDS = [
  'ok', 'verified', 'converged', 'seed', 'log', 'vcpus', 'memoryBytes', 'workingSetBytes', 'workload', 'dirtyRateMiBs',
  'bandwidthMiBs', 'maxDowntimeMs', 'maxRounds', 'dirtyLimitMiBs', 'destinationThread', 'mutants', 'rounds', 'pagesSent',
  'pagesResent', 'bytesSent', 'parkMs', 'downtimeMs', 'finalPages', 'migrationMs', 'totalMs', 'guestWrites', 'ringFullExits',
  'stallMs', 'maxStallMs', 'records', 'badRecords', 'resetCalls', 'entriesReset', 'resetMismatches', 'getCalls', 'clearCalls',
  'deviceWrites', 'kernelWarnings', 'dirtyLimit', 'mismatchedPages', 'mismatches', 'roundReports', 'error', 'interrupted',
];

const ROUND_FIELDS = [
  'round', 'kind', 'pagesSent', 'pagesResent', 'bytesSent', 'durationMs', 'dirtyPages', 'dirtyRateMiBs', 'remainingPages',
  'expectedDowntimeMs', 'guestWrites', 'ringFullExits', 'stallMs', 'throttleSleepMs', 'dirtyLimitActive',
];

function measures(over: Partial<RoundMeasures> = {}): RoundMeasures {
  return {
    round: 2,
    kind: 'iterate',
    pagesSent: 100,
    pagesResent: 10,
    startedAt: 1000,
    endedAt: 1250.0004,
    previousSyncAt: 1000,
    dirtyPages: 256,
    remainingPages: 256,
    expectedDowntimeMs: 5.00049,
    before: { guestWrites: 10, ringFullExits: 1, stallMs: 0.5, throttleSleepMs: 0 },
    after: { guestWrites: 310, ringFullExits: 4, stallMs: 2.25, throttleSleepMs: 1.5 },
    dirtyLimitActive: false,
    ...over,
  };
}

describe('roundReport', () => {
  it('turns a round’s measures into its report', () => {
    const r = roundReport(measures());
    expect(Object.keys(r)).toEqual(ROUND_FIELDS);
    expect(r).toEqual({
      round: 2,
      kind: 'iterate',
      pagesSent: 100,
      pagesResent: 10,
      bytesSent: 100 * PAGE_SIZE,
      durationMs: 250,
      dirtyPages: 256,
      // 1 MiB dirtied in a quarter of a second.
      dirtyRateMiBs: 4,
      remainingPages: 256,
      expectedDowntimeMs: 5,
      guestWrites: 300,
      ringFullExits: 3,
      stallMs: 1.75,
      throttleSleepMs: 1.5,
      dirtyLimitActive: false,
    });
  });

  it('takes a rate over at least a microsecond, never over no time', () => {
    const r = roundReport(measures({ endedAt: 1000, previousSyncAt: 1000, dirtyPages: 0 }));
    expect(r.dirtyRateMiBs).toBe(0);
    expect(Number.isFinite(roundReport(measures({ endedAt: 1000, previousSyncAt: 1000 })).dirtyRateMiBs)).toBe(true);
  });

  it('asserts its times are in order and the guest counters never go down', () => {
    expect(() => roundReport(measures({ endedAt: 999 }))).toThrow(AssertionError);
    expect(() => roundReport(measures({ previousSyncAt: 1001, endedAt: 1002 }))).toThrow(AssertionError);
    const before = { guestWrites: 10, ringFullExits: 1, stallMs: 0, throttleSleepMs: 0 };
    expect(() => roundReport(measures({ before, after: { ...before, guestWrites: 9 } }))).toThrow(AssertionError);
  });
});

function statistics(over: Partial<MigrationStatistics> = {}): MigrationStatistics {
  const config = validateMigrationConfig({ seed: 9, memoryBytes: 16 * MiB, vcpus: 2 });
  const rounds: RoundReport[] = [
    roundReport(measures({ round: 1, kind: 'bulk', pagesSent: 4096, pagesResent: 0 })),
    roundReport(measures({ round: 2, kind: 'stop-and-copy', pagesSent: 50, pagesResent: 5 })),
  ];
  return {
    config,
    converged: true,
    rounds,
    stop: { parkMs: 1.23456, downtimeMs: 4.0001, finalPages: 50, migrationMs: 300.5 },
    check: { mismatchedPages: 0, mismatches: [] },
    vcpus: { instructions: 5000, ringFullExits: 3, stallNs: 1_500_000, maxStallNs: 1_000_000 },
    deviceWrites: 0,
    tracker: { records: 4200, badRecords: 0, clearCalls: 0, resetCalls: 3, entriesReset: 4200, resetMismatches: 0 },
    vm: { getCalls: 0, clearCalls: 0, warnings: 0 },
    dirtyLimit: null,
    error: null,
    totalMs: 400.0004,
    ...over,
  };
}

describe('summarizeMigration', () => {
  it('keeps every JSON field, in the order --json has always printed them', () => {
    expect(Object.keys(summarizeMigration(statistics()))).toEqual(SUMMARY_FIELDS);
  });

  it('adds up the rounds and converts units', () => {
    const s = summarizeMigration(statistics());
    expect(s).toMatchObject({
      ok: true,
      verified: true,
      converged: true,
      seed: 9,
      log: 'ring',
      workingSetBytes: 16 * MiB,
      bandwidthMiBs: 200,
      mutants: [],
      rounds: 2,
      pagesSent: 4146,
      pagesResent: 5,
      bytesSent: 4146 * PAGE_SIZE,
      parkMs: 1.235,
      downtimeMs: 4,
      finalPages: 50,
      migrationMs: 300.5,
      totalMs: 400,
      guestWrites: 5000,
      stallMs: 1.5,
      maxStallMs: 1,
      records: 4200,
      entriesReset: 4200,
      dirtyLimit: null,
      error: null,
    });
    expect(s.roundReports).toHaveLength(2);
  });

  it('reports the link in MiB/s when it was given in pages per second', () => {
    const config = validateMigrationConfig({ seed: 9, bandwidthPagesPerSec: 1000, mutants: Mutant.NO_FINAL_STOP });
    expect(summarizeMigration(statistics({ config }))).toMatchObject({ bandwidthMiBs: 3.906, mutants: ['no-final-stop'] });
  });

  it('is neither verified nor ok when it failed before the stop-and-copy ended', () => {
    const s = summarizeMigration(statistics({ stop: null, check: null, error: 'vCPU 1 thread died during the migration' }));
    expect(s).toMatchObject({ ok: false, verified: false, parkMs: 0, downtimeMs: 0, finalPages: 0, migrationMs: 0, mismatchedPages: 0, mismatches: [] });
  });

  it.each<[string, Partial<MigrationStatistics>]>([
    ['a page that differs', { check: { mismatchedPages: 1, mismatches: [{ slot: 1, offset: 0, gfn: 0x40000, writer: 0, sourceRound: 3, destinationRound: 2 }] } }],
    ['a reset count mismatch', { tracker: { records: 1, badRecords: 0, clearCalls: 0, resetCalls: 1, entriesReset: 0, resetMismatches: 1 } }],
    ['a bad record', { tracker: { records: 1, badRecords: 1, clearCalls: 0, resetCalls: 0, entriesReset: 0, resetMismatches: 0 } }],
    ['a kernel warning', { vm: { getCalls: 0, clearCalls: 0, warnings: 1 } }],
    ['an error', { error: 'the destination applied nothing for 15000 ms' }],
  ])('is not ok with %s', (_what, over) => {
    expect(summarizeMigration(statistics()).ok).toBe(true);
    expect(summarizeMigration(statistics(over)).ok).toBe(false);
  });

  it('summarizes dirty-limit, rounding its rates and sleeps', () => {
    const facts = {
      quotaMiBs: 4,
      periodMs: 1000,
      stats: { startedAtMs: 120.00049, adjustments: 2, ratesMiBs: [3.99951, 8], throttleUs: [10, 20], history: [] },
      sleeps: { ms: 7.00049, sleeps: 3 },
    };
    const d = dirtyLimitSummary(facts);
    expect(d).toEqual({ quotaMiBs: 4, periodMs: 1000, startedAtMs: 120, adjustments: 2, ratesMiBs: [4, 8], throttleUs: [10, 20], history: [], sleepMs: 7, sleeps: 3 });
    expect(d.throttleUs).not.toBe(facts.stats.throttleUs);
    expect(summarizeMigration(statistics({ dirtyLimit: facts })).dirtyLimit).toEqual(d);
    expect(dirtyLimitSummary({ ...facts, stats: { ...facts.stats, startedAtMs: null } }).startedAtMs).toBeNull();
  });
});

describe('dirtyRateResult', () => {
  const config = validateDirtyRateConfig({ seed: 4, modes: ['ring', 'sampling'], vcpus: 2, memoryBytes: 64 * MiB, dirtyRateMiBs: 8 });
  const period = {
    periodMs: 500.0004,
    guestWrites: 300,
    ring: { perVcpu: [128, 256], stallCollections: 1 },
    bitmapPages: null,
    sampling: { sampledPages: 32, changedPages: 4, slotPages: 16384 },
  };

  it('gives each meter’s rate over the period as it really lasted', () => {
    const r = dirtyRateResult(config, { period, error: null, kernelWarnings: 0, resetMismatch: undefined });
    expect(Object.keys(r)).toEqual(['ok', 'seed', 'modes', 'vcpus', 'memoryBytes', 'periodMs', 'guestWrites', 'guestTargetMiBs', 'ring', 'bitmap', 'sampling', 'error']);
    expect(r).toEqual({
      ok: true,
      seed: 4,
      modes: ['ring', 'sampling'],
      vcpus: 2,
      memoryBytes: 64 * MiB,
      periodMs: 500,
      guestWrites: 300,
      guestTargetMiBs: 16,
      // 384 pages = 1.5 MiB in half a second.
      ring: { dirtyRateMiBs: 3, pages: 384, perVcpuMiBs: [1, 2], stallCollections: 1 },
      bitmap: null,
      // An eighth of 64 MiB in half a second.
      sampling: { dirtyRateMiBs: 16, sampledPages: 32, changedPages: 4, samplePagesPerGiB: 512 },
      error: null,
    });
  });

  it('has no rates when the period never ended', () => {
    const r = dirtyRateResult(config, { period: null, error: 'vCPU 0 thread died', kernelWarnings: 0, resetMismatch: undefined });
    expect(r).toMatchObject({ ok: false, periodMs: 0, guestWrites: 0, ring: null, bitmap: null, sampling: null, error: 'vCPU 0 thread died' });
  });

  it('fails on a reset count mismatch or a kernel warning, naming the mismatch when nothing else went wrong', () => {
    const mismatch = { expected: 3, returned: 2 };
    const r = dirtyRateResult(config, { period, error: null, kernelWarnings: 0, resetMismatch: mismatch });
    expect(r.ok).toBe(false);
    expect(r.error).toBe(`KVM_RESET_DIRTY_RINGS count mismatch: ${JSON.stringify(mismatch)}`);
    expect(dirtyRateResult(config, { period, error: 'earlier', kernelWarnings: 0, resetMismatch: mismatch }).error).toBe('earlier');
    expect(dirtyRateResult(config, { period, error: null, kernelWarnings: 1, resetMismatch: undefined }).ok).toBe(false);
  });
});
