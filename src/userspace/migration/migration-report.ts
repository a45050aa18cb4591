/** What a migration reports, per round and in total (the CLI prints it; --json emits it). */
import type { WorkloadKind } from '../../guest/workloads.js';
import type { LogMode } from '../log-collectors.js';

export type RoundKind = 'bulk' | 'iterate' | 'stop-and-copy';

export interface RoundReport {
  /** 1 is the bulk pass; the stop-and-copy is the last. */
  readonly round: number;
  readonly kind: RoundKind;
  /** Pages sent in this round, and how many of them had not changed since they were last sent. */
  readonly pagesSent: number;
  readonly pagesResent: number;
  readonly bytesSent: number;
  /** The round's pass plus the sync that closes it. */
  readonly durationMs: number;
  /** Pages the sync closing this round found dirty (what the next round must send). */
  readonly dirtyPages: number;
  /** dirtyPages × page size over the time since the previous sync. */
  readonly dirtyRateMiBs: number;
  /** What the next round must send, and how long that takes on the link. */
  readonly remainingPages: number;
  readonly expectedDowntimeMs: number;
  readonly guestWrites: number;
  readonly ringFullExits: number;
  readonly stallMs: number;
  readonly throttleSleepMs: number;
  readonly dirtyLimitActive: boolean;
}

export interface PageMismatch {
  /** Memslot id, page offset in it, gfn. */
  readonly slot: number;
  readonly offset: number;
  readonly gfn: number;
  /** Writer id in the source page header (vCPU, or device ≥ DEVICE_WRITER_BASE). */
  readonly writer: number;
  /** The round whose value the source page holds (the guest writes the round number). */
  readonly sourceRound: number;
  readonly destinationRound: number;
}

export interface DirtyLimitSummary {
  readonly quotaMiBs: number;
  readonly periodMs: number;
  /** ms after the migration started when the throttle trigger switched the limit on (null: never). */
  readonly startedAtMs: number | null;
  readonly adjustments: number;
  /** Last measured rate (MiB/s) and sleep per full ring (µs), per vCPU. */
  readonly ratesMiBs: number[];
  readonly throttleUs: number[];
  /** The first adjustments (ms after the migration started, rates measured, sleeps set). */
  readonly history: { atMs: number; ratesMiBs: number[]; throttleUs: number[] }[];
  readonly sleepMs: number;
  readonly sleeps: number;
}

export interface MigrationSummary {
  ok: boolean;
  /** Cancelled on request (Ctrl-C) during the pre-copy rounds: the guest stayed at the source, nothing was verified. */
  interrupted: boolean;
  verified: boolean;
  converged: boolean;
  seed: number;
  log: LogMode;
  vcpus: number;
  memoryBytes: number;
  workingSetBytes: number;
  workload: WorkloadKind;
  dirtyRateMiBs: number;
  /** The link, in MiB/s (converted when it was given in pages per second). */
  bandwidthMiBs: number;
  maxDowntimeMs: number;
  maxRounds: number;
  dirtyLimitMiBs: number;
  destinationThread: boolean;
  mutants: string[];
  /** Copy passes, the bulk pass and the stop-and-copy included. */
  rounds: number;
  pagesSent: number;
  pagesResent: number;
  bytesSent: number;
  /** Stop requested → every vCPU (and device) parked. */
  parkMs: number;
  /** Every vCPU parked → the last page applied at the destination (the guest is down for parkMs + this). */
  downtimeMs: number;
  /** Pages sent during the stop-and-copy. */
  finalPages: number;
  /** Migration start (logging on) → last page applied. */
  migrationMs: number;
  /** The whole run, thread start-up and verification included. */
  totalMs: number;
  guestWrites: number;
  ringFullExits: number;
  stallMs: number;
  maxStallMs: number;
  records: number;
  badRecords: number;
  resetCalls: number;
  entriesReset: number;
  resetMismatches: number;
  getCalls: number;
  clearCalls: number;
  deviceWrites: number;
  kernelWarnings: number;
  dirtyLimit: DirtyLimitSummary | null;
  mismatchedPages: number;
  mismatches: PageMismatch[];
  roundReports: RoundReport[];
  error: string | null;
}
