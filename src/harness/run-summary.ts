/**
 * What a `dirtyring run` reports (`--json` prints it), made in one step from the statistics the
 * run collected: the VM's, the vCPU and device threads' counters, the collector's, the copier's,
 * the checks' findings and page write-tracking's. `summarizeRun` is pure: the run gathers, this
 * module only adds up, converts units and judges.
 */
import type { CopyMismatch } from '../userspace/dirty-copier.js';
import type { LostPage } from '../checker/oracle.js';
import type { WorkloadKind } from '../guest/workloads.js';
import type { VmStats } from '../kernel/vm.js';
import { assert } from '../base/assert.js';
import { NS_PER_MS } from '../base/units.js';
import { round3 } from '../userspace/guest-fleet.js';
import { mutantNames } from '../userspace/known-bugs.js';
import type { CollectorStats, LogMode } from '../userspace/log-collectors.js';
import type { PageTrackSummary } from './page-track-summary.js';
import type { RunConfig } from './run-config.js';

/** falsePositiveRate keeps six decimals: one resend in a million copies still shows. */
const RATE_SCALE = 1e6;

export interface RunSummary {
  ok: boolean;
  seed: number;
  log: LogMode;
  vcpus: number;
  iterations: number;
  memoryBytes: number;
  memslots: number;
  /** SMRAM pages in address space 1 (0: the VM had no SMM). */
  smmPages: number;
  ringEntries: number | null;
  clearChunkPages: number | null;
  initiallySet: boolean;
  ringWithBitmap: boolean;
  workload: WorkloadKind;
  path: 'fault' | 'emulated';
  mutants: string[];
  guestWrites: number;
  guestStores: number;
  faults: number;
  spuriousFaults: number;
  /** Records made by vCPUs: ring pushes or bitmap bits set. */
  pushes: number;
  /**
   * Records userspace collected: ring entries harvested, or bits read. (`lostPages` below counts
   * each page once that either check flagged: the oracle, or the byte-exact copy.)
   */
  pagesHarvested: number;
  ringFullExits: number;
  stallMs: number;
  maxStallMs: number;
  resetCalls: number;
  entriesReset: number;
  resetMismatches: number;
  getCalls: number;
  clearCalls: number;
  deviceWriters: number;
  deviceWrites: number;
  deviceWritesLost: number;
  badEntries: number;
  duplicates: number;
  /**
   * Records of a page already collected in the same collection (two vCPUs' rings raced on
   * it, or the emulated path logged every store) — what the stress harness calls duplicates;
   * `duplicates` also counts pages re-dirtied after a reset, which is routine.
   */
  duplicateRecords: number;
  pagesCopied: number;
  /**
   * Pages the dirty log handed to the copier whose last write (writer, sequence number and
   * iteration value in the page) is the one their previous copy already carried: sent again
   * although their content had not changed since they were last sent.
   */
  pagesResent: number;
  /**
   * The same count as pagesResent, under the name the JSON summary has always had (README,
   * scripts read it). It is the copier's count, not the oracle's false positives (pages
   * reported without a write in the iteration), which a run does not sum.
   */
  falsePositives: number;
  /** falsePositives / pagesCopied: comparable between runs that did different amounts of work. */
  falsePositiveRate: number;
  lostPages: number;
  wrongValues: number;
  copyMismatches: number;
  kernelWarnings: number;
  kernelBugs: number;
  tlbFlushes: number;
  mmuLockMaxHoldUs: number;
  mmuLockTotalHoldUs: number;
  /**
   * mmu_lock hold per ioctl kind, in µs: `mean` per call, `max` the longest of one call (an
   * outlier when the OS preempts the holder), and `total`. GET and CLEAR take the lock once per
   * call; a reset takes it once per batch, and its `max` is the longest call's sum over its
   * batches, so that `mean` ≤ `max` always. Reset batch holds are sampled (one in 8, each
   * measured one counting for 8: ring-reset.ts), and both figures are built from that sample.
   */
  mmuLockHoldUs: { get: LockHold; clear: LockHold; reset: LockHold };
  elapsedMs: number;
  lost: LostPage[];
  mismatches: CopyMismatch[];
  /** Page write-tracking (src/harness/page-track-run.ts); null without --track-pages. */
  pageTrack: PageTrackSummary | null;
  error: string | null;
  /** Stopped before its last iteration by a stop request (Ctrl-C): the figures are the iterations made. */
  interrupted: boolean;
  /**
   * Ring logging: the vCPU threads reaped their own rings on exit 31 (the self-reap design);
   * false: they stalled until userspace collected (the hand-off design, or another log mode).
   */
  selfReap: boolean;
}

export interface LockHold {
  calls: number;
  mean: number;
  max: number;
  total: number;
}

/** The VM's counters a summary reads (VmStats at the end of the run). */
export type RunVmStats = Pick<
  VmStats,
  | 'getCalls'
  | 'clearCalls'
  | 'resetCalls'
  | 'warnings'
  | 'kernelBugs'
  | 'tlbFlushes'
  | 'mmuLockMaxHoldUs'
  | 'mmuLockTotalHoldUs'
  | 'mmuHoldGetMaxUs'
  | 'mmuHoldGetTotalUs'
  | 'mmuHoldClearMaxUs'
  | 'mmuHoldClearTotalUs'
  | 'mmuHoldResetMaxUs'
  | 'mmuHoldResetTotalUs'
>;

/** The vCPU threads' counters, summed over every vCPU (the stall maximum: the largest). */
export interface VcpuTotals {
  readonly instructions: number;
  readonly stores: number;
  readonly faults: number;
  readonly spuriousFaults: number;
  readonly pushes: number;
  readonly ringFullExits: number;
  readonly stallNs: number;
  readonly maxStallNs: number;
}

/** The DMA device threads' counters, summed. */
export interface DeviceTotals {
  readonly writes: number;
  readonly lost: number;
}

/** The page copier's counters (src/userspace/dirty-copier.ts). */
export interface CopierTotals {
  readonly pagesCopied: number;
  readonly pagesResent: number;
  /** Records of a page already copied in the same collection round. */
  readonly duplicates: number;
}

/** What the checks found over every iteration (findings-tally.ts). */
export interface FindingTotals {
  readonly lostPages: number;
  readonly wrongValues: number;
  /** The oracle's duplicates: pages reported again after a reset in the same iteration. */
  readonly duplicates: number;
  readonly badEntries: number;
  readonly copyMismatches: number;
  readonly lost: readonly LostPage[];
  readonly mismatches: readonly CopyMismatch[];
}

/** Everything a run collected, at its end. */
export interface RunStatistics {
  readonly config: RunConfig;
  /** Iterations completed. */
  readonly iterations: number;
  readonly error: string | null;
  /** Stopped early on request (optional: callers that never stop a run leave it out). */
  readonly interrupted?: boolean;
  readonly elapsedMs: number;
  readonly vm: RunVmStats;
  readonly vcpus: VcpuTotals;
  readonly devices: DeviceTotals;
  readonly collector: Pick<CollectorStats, 'records' | 'resetCalls' | 'entriesReset' | 'resetMismatches'>;
  readonly copier: CopierTotals;
  readonly findings: FindingTotals;
  readonly pageTrack: PageTrackSummary | null;
}

export function lockHold(calls: number, maxUs: number, totalUs: number): LockHold {
  return { calls, mean: calls > 0 ? round3(totalUs / calls) : 0, max: round3(maxUs), total: round3(totalUs) };
}

/** Resends per page copied, to six decimals (0 when nothing was copied). */
export function falsePositiveRate(pagesResent: number, pagesCopied: number): number {
  return pagesCopied > 0 ? Math.round((pagesResent / pagesCopied) * RATE_SCALE) / RATE_SCALE : 0;
}

/** The run's verdict: every iteration ran, nothing was lost, and neither side reported a fault. */
export function runPassed(s: Omit<RunSummary, 'ok'>, iterationsAsked: number): boolean {
  return (
    (s.pageTrack?.ok ?? true) &&
    s.error === null &&
    s.iterations === iterationsAsked &&
    s.lostPages === 0 &&
    s.wrongValues === 0 &&
    s.copyMismatches === 0 &&
    s.resetMismatches === 0 &&
    s.badEntries === 0 &&
    s.kernelWarnings === 0 &&
    s.kernelBugs === 0
  );
}

/** The summary of a run from what it collected (pure). */
export function summarizeRun(r: RunStatistics): RunSummary {
  const { config, vm, vcpus, copier, findings } = r;
  assert(r.iterations >= 0 && r.iterations <= config.iterations, `${r.iterations} iterations completed of ${config.iterations}`);
  const summary: Omit<RunSummary, 'ok'> = {
    ...describeRun(config, r.iterations),
    guestWrites: vcpus.instructions,
    guestStores: vcpus.stores,
    faults: vcpus.faults,
    spuriousFaults: vcpus.spuriousFaults,
    pushes: vcpus.pushes,
    pagesHarvested: r.collector.records,
    ringFullExits: vcpus.ringFullExits,
    stallMs: round3(vcpus.stallNs / NS_PER_MS),
    maxStallMs: round3(vcpus.maxStallNs / NS_PER_MS),
    resetCalls: r.collector.resetCalls,
    entriesReset: r.collector.entriesReset,
    resetMismatches: r.collector.resetMismatches,
    getCalls: vm.getCalls,
    clearCalls: vm.clearCalls,
    deviceWriters: config.deviceWriters,
    deviceWrites: r.devices.writes,
    deviceWritesLost: r.devices.lost,
    badEntries: findings.badEntries,
    duplicates: findings.duplicates + copier.duplicates,
    duplicateRecords: copier.duplicates,
    pagesCopied: copier.pagesCopied,
    pagesResent: copier.pagesResent,
    falsePositives: copier.pagesResent,
    falsePositiveRate: falsePositiveRate(copier.pagesResent, copier.pagesCopied),
    lostPages: findings.lostPages,
    wrongValues: findings.wrongValues,
    copyMismatches: findings.copyMismatches,
    kernelWarnings: vm.warnings,
    kernelBugs: vm.kernelBugs,
    tlbFlushes: vm.tlbFlushes,
    mmuLockMaxHoldUs: round3(vm.mmuLockMaxHoldUs),
    mmuLockTotalHoldUs: round3(vm.mmuLockTotalHoldUs),
    mmuLockHoldUs: {
      get: lockHold(vm.getCalls, vm.mmuHoldGetMaxUs, vm.mmuHoldGetTotalUs),
      clear: lockHold(vm.clearCalls, vm.mmuHoldClearMaxUs, vm.mmuHoldClearTotalUs),
      reset: lockHold(vm.resetCalls, vm.mmuHoldResetMaxUs, vm.mmuHoldResetTotalUs),
    },
    elapsedMs: round3(r.elapsedMs),
    lost: findings.lost.slice(),
    mismatches: findings.mismatches.slice(),
    pageTrack: r.pageTrack,
    error: r.error,
    // New fields go last: the JSON keeps the order it has always had.
    smmPages: config.smmPages,
    interrupted: r.interrupted === true,
    selfReap: config.selfReap,
  };
  // `ok` comes first in the JSON, as it always has.
  return { ok: runPassed(summary, config.iterations), ...summary };
}

type RunDescription = Pick<
  RunSummary,
  'seed' | 'log' | 'vcpus' | 'iterations' | 'memoryBytes' | 'memslots' | 'ringEntries' | 'clearChunkPages' | 'initiallySet' | 'ringWithBitmap' | 'workload' | 'path' | 'mutants'
>;

/** What was run: the configuration fields of a summary, in the order the JSON has always had them. */
function describeRun(config: RunConfig, iterations: number): RunDescription {
  return {
    seed: config.seed,
    log: config.log,
    vcpus: config.vcpus,
    iterations,
    memoryBytes: config.memoryBytes,
    memslots: config.memslots,
    ringEntries: config.log === 'ring' ? config.ringEntries : null,
    clearChunkPages: config.log === 'clear' ? config.clearChunkPages : null,
    initiallySet: config.initiallySet,
    ringWithBitmap: config.ringWithBitmap,
    workload: config.workload,
    path: config.emulateAllStores ? 'emulated' : 'fault',
    mutants: mutantNames(config.mutants),
  };
}
