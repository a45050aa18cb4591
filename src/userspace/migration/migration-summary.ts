/**
 * A migration's reports, made from what it measured: each round's report from the counters
 * read at its start and end, and the summary from the rounds, the stop-and-copy's times, the
 * verification and the statistics of the VM, the threads, the dirty tracker and dirty-limit.
 * Pure: the migration gathers, this module only adds up, converts units and judges.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { assert } from '../../base/assert.js';
import { MS_PER_S, MiB, NS_PER_MS } from '../../base/units.js';
import { round3 } from '../guest-fleet.js';
import { mutantNames } from '../known-bugs.js';
import type { DirtyLimitStats } from './dirty-limit.js';
import type { TrackerStats } from './dirty-tracker.js';
import { type MigrationConfig, bandwidthBytesPerSecond } from './migration-config.js';
import type { DirtyLimitSummary, MigrationSummary, PageMismatch, RoundKind, RoundReport } from './migration-report.js';

/** A rate is taken over at least a microsecond: one over no time at all would be infinite. */
const MIN_RATE_SPAN_MS = 1e-3;

/** Counters that only grow, read at a round's start and end. */
export interface RoundCounters {
  readonly guestWrites: number;
  readonly ringFullExits: number;
  readonly stallMs: number;
  readonly throttleSleepMs: number;
}

export interface RoundMeasures {
  readonly round: number;
  readonly kind: RoundKind;
  readonly pagesSent: number;
  readonly pagesResent: number;
  /** When the round's pass began and when the sync closing it (or the last page) ended. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** When the previous sync ended: the dirty rate is measured over the time since. */
  readonly previousSyncAt: number;
  readonly dirtyPages: number;
  readonly remainingPages: number;
  readonly expectedDowntimeMs: number;
  readonly before: RoundCounters;
  readonly after: RoundCounters;
  readonly dirtyLimitActive: boolean;
}

export function roundReport(m: RoundMeasures): RoundReport {
  assert(m.endedAt >= m.startedAt && m.startedAt >= m.previousSyncAt, `round ${m.round}: its times are out of order`);
  assert(m.after.guestWrites >= m.before.guestWrites && m.after.ringFullExits >= m.before.ringFullExits, `round ${m.round}: a guest counter went down`);
  const sinceSyncMs = Math.max(MIN_RATE_SPAN_MS, m.endedAt - m.previousSyncAt);
  return {
    round: m.round,
    kind: m.kind,
    pagesSent: m.pagesSent,
    pagesResent: m.pagesResent,
    bytesSent: m.pagesSent * PAGE_SIZE,
    durationMs: round3(m.endedAt - m.startedAt),
    dirtyPages: m.dirtyPages,
    dirtyRateMiBs: round3((m.dirtyPages * PAGE_SIZE) / MiB / (sinceSyncMs / MS_PER_S)),
    remainingPages: m.remainingPages,
    expectedDowntimeMs: round3(m.expectedDowntimeMs),
    guestWrites: m.after.guestWrites - m.before.guestWrites,
    ringFullExits: m.after.ringFullExits - m.before.ringFullExits,
    stallMs: round3(m.after.stallMs - m.before.stallMs),
    throttleSleepMs: round3(m.after.throttleSleepMs - m.before.throttleSleepMs),
    dirtyLimitActive: m.dirtyLimitActive,
  };
}

/** The stop-and-copy's times (ms), from the stop request. */
export interface StopAndCopyTimes {
  /** Stop requested → every writer parked. */
  readonly parkMs: number;
  /** Every writer parked → the last page applied (0 when the copy ended first). */
  readonly downtimeMs: number;
  readonly finalPages: number;
  /** Logging turned on → the last page applied. */
  readonly migrationMs: number;
}

/** The byte-exact comparison of destination and source, with every writer parked. */
export interface DestinationCheck {
  readonly mismatchedPages: number;
  readonly mismatches: PageMismatch[];
}

/** Dirty-limit's state at the end, as the controller holds it. */
export interface DirtyLimitFacts {
  readonly quotaMiBs: number;
  readonly periodMs: number;
  readonly stats: DirtyLimitStats;
  readonly sleeps: { readonly ms: number; readonly sleeps: number };
}

export interface MigrationStatistics {
  readonly config: MigrationConfig;
  readonly converged: boolean;
  /** Cancelled on request before the stop-and-copy (optional: callers that never cancel leave it out). */
  readonly interrupted?: boolean;
  /** Every round that ended, the stop-and-copy included. */
  readonly rounds: readonly RoundReport[];
  /** Null when the migration failed before the stop-and-copy ended. */
  readonly stop: StopAndCopyTimes | null;
  /** Null when the migration failed before the verification. */
  readonly check: DestinationCheck | null;
  readonly vcpus: { readonly instructions: number; readonly ringFullExits: number; readonly stallNs: number; readonly maxStallNs: number };
  readonly deviceWrites: number;
  readonly tracker: TrackerStats;
  readonly vm: { readonly getCalls: number; readonly clearCalls: number; readonly warnings: number };
  readonly dirtyLimit: DirtyLimitFacts | null;
  readonly error: string | null;
  readonly totalMs: number;
}

export function dirtyLimitSummary(d: DirtyLimitFacts): DirtyLimitSummary {
  return {
    quotaMiBs: d.quotaMiBs,
    periodMs: d.periodMs,
    startedAtMs: d.stats.startedAtMs === null ? null : round3(d.stats.startedAtMs),
    adjustments: d.stats.adjustments,
    ratesMiBs: d.stats.ratesMiBs.map(round3),
    throttleUs: d.stats.throttleUs.slice(),
    history: d.stats.history,
    sleepMs: round3(d.sleeps.ms),
    sleeps: d.sleeps.sleeps,
  };
}

/** A migration succeeded when it ended without error and the copy was exact, with no fault reported. */
export function migrationPassed(s: Omit<MigrationSummary, 'ok'>): boolean {
  return s.error === null && s.verified && s.resetMismatches === 0 && s.badRecords === 0 && s.kernelWarnings === 0;
}

export function summarizeMigration(m: MigrationStatistics): MigrationSummary {
  const { config, stop, check, tracker } = m;
  let pagesSent = 0;
  let pagesResent = 0;
  for (const r of m.rounds) {
    pagesSent += r.pagesSent;
    pagesResent += r.pagesResent;
  }
  const summary: Omit<MigrationSummary, 'ok'> = {
    verified: check !== null && check.mismatchedPages === 0,
    converged: m.converged,
    ...describeMigration(config),
    rounds: m.rounds.length,
    pagesSent,
    pagesResent,
    bytesSent: pagesSent * PAGE_SIZE,
    parkMs: round3(stop?.parkMs ?? 0),
    downtimeMs: round3(stop?.downtimeMs ?? 0),
    finalPages: stop?.finalPages ?? 0,
    migrationMs: round3(stop?.migrationMs ?? 0),
    totalMs: round3(m.totalMs),
    guestWrites: m.vcpus.instructions,
    ringFullExits: m.vcpus.ringFullExits,
    stallMs: round3(m.vcpus.stallNs / NS_PER_MS),
    maxStallMs: round3(m.vcpus.maxStallNs / NS_PER_MS),
    records: tracker.records,
    badRecords: tracker.badRecords,
    resetCalls: tracker.resetCalls,
    entriesReset: tracker.entriesReset,
    resetMismatches: tracker.resetMismatches,
    getCalls: m.vm.getCalls,
    clearCalls: m.vm.clearCalls,
    deviceWrites: m.deviceWrites,
    kernelWarnings: m.vm.warnings,
    dirtyLimit: m.dirtyLimit === null ? null : dirtyLimitSummary(m.dirtyLimit),
    mismatchedPages: check?.mismatchedPages ?? 0,
    mismatches: check?.mismatches.slice() ?? [],
    roundReports: m.rounds.slice(),
    error: m.error,
    interrupted: m.interrupted === true,
  };
  // `ok` comes first in the JSON, as it always has.
  return { ok: migrationPassed(summary), ...summary };
}

type MigrationDescription = Pick<
  MigrationSummary,
  | 'seed'
  | 'log'
  | 'vcpus'
  | 'memoryBytes'
  | 'workingSetBytes'
  | 'workload'
  | 'dirtyRateMiBs'
  | 'bandwidthMiBs'
  | 'maxDowntimeMs'
  | 'maxRounds'
  | 'dirtyLimitMiBs'
  | 'destinationThread'
  | 'mutants'
>;

/** What was migrated and how: the configuration fields of a summary, in the JSON's order. */
function describeMigration(config: MigrationConfig): MigrationDescription {
  return {
    seed: config.seed,
    log: config.log,
    vcpus: config.vcpus,
    memoryBytes: config.memoryBytes,
    workingSetBytes: config.workingSetBytes > 0 ? config.workingSetBytes : config.memoryBytes,
    workload: config.workload,
    dirtyRateMiBs: config.dirtyRateMiBs,
    bandwidthMiBs: round3(bandwidthBytesPerSecond(config) / MiB),
    maxDowntimeMs: config.maxDowntimeMs,
    maxRounds: config.maxRounds,
    dirtyLimitMiBs: config.dirtyLimitMiBs,
    destinationThread: config.destinationThread,
    mutants: mutantNames(config.mutants),
  };
}
