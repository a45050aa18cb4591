/**
 * One `dirtyring run`: a VM logging dirty pages through one of KVM's three interfaces (dirty
 * rings, legacy GET, manual protect GET + CLEAR), vCPU worker threads running a guest workload,
 * optional DMA device threads writing with no running vCPU, and userspace (this thread) doing
 * what dirty_log_test's host does, for several writers:
 *
 *   for each iteration k:
 *     publish k, resume every vCPU and device;
 *     until the interval has passed (and the guests made progress): collect on the first pass,
 *       whenever a vCPU stalls on a full ring (then resume it), and periodically — copying
 *       every collected page to a destination as soon as it is safe to read;
 *     kick and park every writer; collect once more (device bitmap last);
 *     verify: the dirty_log_test oracle on every page, and destination == source byte for byte.
 *
 * Platform-neutral: the caller supplies how to spawn a worker (Node or browser).
 */
import { encodeSlot } from '../abi/constants.js';
import { isKvmError } from '../abi/errno.js';
import { type DeviceLayout } from '../userspace/device-layout.js';
import { GuestGlobalsLayout } from '../guest/guest-memory.js';
import { VcpuLayout, VcpuState } from '../kernel/vcpu-layout.js';
import { DirtyLogOracle, type LostPage, type OracleSlot, type PendingStore } from '../checker/oracle.js';
import type { WorkloadConfig, WorkloadKind } from '../guest/workloads.js';
import type { Memslot } from '../kernel/memslots.js';
import { mutantNames } from '../userspace/known-bugs.js';
import { userspaceFaults } from '../userspace/faults.js';
import { now } from '../base/clock.js';
import type { Vm } from '../kernel/vm.js';
import { yieldToEventLoop } from '../platform/async-wait.js';
import { type CopyMismatch, DirtyPageCopier } from '../userspace/dirty-copier.js';
import { type LogCollector, type LogMode, SelfReapLogCollector, createCollector } from '../userspace/log-collectors.js';
import { SharedReaper } from '../userspace/self-reaper.js';
import type { StepHookSpec } from '../kernel/step-hook.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, buildGuestVm, describeFailure, round3 } from '../userspace/guest-fleet.js';
import type { SpawnVcpuWorker } from '../userspace/vcpu-worker-api.js';
import { PageTrackRun, type PageTrackSummary } from './page-track-run.js';
import { type RunConfig, validateRunConfig } from './run-config.js';
import { RingWedgeDetector } from './wedge-detector.js';

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
  /** Page write-tracking (issue 4): shadow and notification-mirror mismatches (0 without --track-pages). */
  readonly trackMismatches: number;
  readonly elapsedMs: number;
}

export interface RunSummary {
  ok: boolean;
  seed: number;
  log: LogMode;
  vcpus: number;
  iterations: number;
  memoryBytes: number;
  memslots: number;
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
   * mmu_lock hold per ioctl kind, in µs: the mean per call, the longest single hold (an outlier
   * when the OS preempts the holder), and the total. Reset batches are sampled (vm.ts).
   */
  mmuLockHoldUs: { get: LockHold; clear: LockHold; reset: LockHold };
  elapsedMs: number;
  lost: LostPage[];
  mismatches: CopyMismatch[];
  /** Page write-tracking (issue 4, src/harness/page-track-run.ts); null without --track-pages. */
  pageTrack: PageTrackSummary | null;
  error: string | null;
}

export interface LockHold {
  calls: number;
  mean: number;
  max: number;
  total: number;
}

export interface RunHooks {
  readonly spawn: SpawnVcpuWorker;
  /** Called once with the validated configuration, before any thread starts. */
  readonly onStart?: (config: RunConfig) => void;
  readonly onIteration?: (report: IterationReport) => void;
  /**
   * Test hook: during this iteration, turn LOG_DIRTY_PAGES off on this memslot id a third of
   * the way through and on again at two thirds (the slot is not judged in that iteration).
   */
  readonly toggleLog?: { readonly slotId: number; readonly iteration: number };
  // --- Stress harness (issue 6); all optional, a plain run uses none of them. ---
  /** Random delays at the step points of every vCPU worker (real threads, free-running). */
  readonly vcpuStepHook?: StepHookSpec;
  /** A harvester of the stress harness's (harvester-variants.ts) instead of the mode's collector. */
  readonly createCollector?: (vm: Vm, vcpus: number, slots: readonly Memslot[], config: RunConfig) => LogCollector;
  /** Asked at every poll of an iteration: force a collection now, and/or kick a vCPU (−1: none). */
  readonly onPoll?: (iteration: number) => PollAction | null;
}

/** What the stress harness's `onPoll` asks for (harvest timing jitter, kicks at random moments). */
export interface PollAction {
  readonly harvest: boolean;
  readonly kick: number;
}

export async function runDirtyLog(input: Partial<RunConfig>, hooks: RunHooks): Promise<RunSummary> {
  const config = validateRunConfig(input);
  hooks.onStart?.(config);
  const t0 = now();
  const { vm, slots } = buildGuestVm(config, true);
  const faults = userspaceFaults(config.mutants);
  const oracleSlots: OracleSlot[] = slots.map((s) => ({
    encodedSlot: s.encodedSlot,
    id: s.id,
    baseGfn: s.baseGfn,
    pageCount: s.pageCount,
    mem32: s.mem32,
  }));
  const fleet = new GuestFleet(vm, config.vcpus, config.deviceWriters, hooks.spawn);
  const { globals, control } = fleet;
  // Self-reap: the vCPU threads reap their own rings on exit 31, this thread the rest. The
  // stress harness may substitute its own harvester variants (hooks.createCollector).
  const reaperBuffers = config.selfReap ? SharedReaper.createBuffers(slots) : undefined;
  const collector: LogCollector =
    hooks.createCollector?.(vm, config.vcpus, slots, config) ??
    (reaperBuffers
      ? new SelfReapLogCollector(vm, new SharedReaper(vm, reaperBuffers), slots)
      : createCollector(config.log, vm, config.vcpus, slots, config.clearChunkPages, faults));
  // A vCPU stalled on a full ring that a whole collection cannot unstall is wedged (see wedge-detector.ts).
  const wedgeDetector = new RingWedgeDetector();
  const copier = new DirtyPageCopier(slots);
  const oracle = new DirtyLogOracle(oracleSlots, config.seed);
  const sink = (slot: number, offLo: number, offHi: number): void => {
    oracle.report(slot, offLo, offHi);
    copier.copy(slot, offLo, offHi);
  };

  const summary: RunSummary = {
    ok: false,
    seed: config.seed,
    log: config.log,
    vcpus: config.vcpus,
    iterations: 0,
    memoryBytes: config.memoryBytes,
    memslots: config.memslots,
    ringEntries: config.log === 'ring' ? config.ringEntries : null,
    clearChunkPages: config.log === 'clear' ? config.clearChunkPages : null,
    initiallySet: config.initiallySet,
    ringWithBitmap: config.ringWithBitmap,
    workload: config.workload,
    path: config.emulateAllStores ? 'emulated' : 'fault',
    mutants: mutantNames(config.mutants),
    guestWrites: 0,
    guestStores: 0,
    faults: 0,
    spuriousFaults: 0,
    pushes: 0,
    pagesHarvested: 0,
    ringFullExits: 0,
    stallMs: 0,
    maxStallMs: 0,
    resetCalls: 0,
    entriesReset: 0,
    resetMismatches: 0,
    getCalls: 0,
    clearCalls: 0,
    deviceWriters: config.deviceWriters,
    deviceWrites: 0,
    deviceWritesLost: 0,
    badEntries: 0,
    duplicates: 0,
    duplicateRecords: 0,
    pagesCopied: 0,
    pagesResent: 0,
    falsePositives: 0,
    falsePositiveRate: 0,
    lostPages: 0,
    wrongValues: 0,
    copyMismatches: 0,
    kernelWarnings: 0,
    kernelBugs: 0,
    tlbFlushes: 0,
    mmuLockMaxHoldUs: 0,
    mmuLockTotalHoldUs: 0,
    mmuLockHoldUs: {
      get: { calls: 0, mean: 0, max: 0, total: 0 },
      clear: { calls: 0, mean: 0, max: 0, total: 0 },
      reset: { calls: 0, mean: 0, max: 0, total: 0 },
    },
    elapsedMs: 0,
    lost: [],
    mismatches: [],
    pageTrack: null,
    error: null,
  };

  /** Page write-tracking's part of the run (--track-pages), started once the threads are up. */
  let track: PageTrackRun | null = null;
  const sumVcpu = (field: keyof typeof VcpuLayout.floats): number => fleet.sumVcpu(field);
  const sumDevice = (field: keyof typeof DeviceLayout.floats): number => fleet.sumDevice(field);

  try {
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: slots.map((s) => ({ baseGfn: s.baseGfn, pageCount: s.pageCount })),
      burstPages: config.burstPages,
      burstPercent: config.burstPercent,
      writesPerIteration: config.writesPerIteration,
    };
    await fleet.start({
      workload,
      deviceIntervalUs: config.deviceIntervalUs,
      vcpuOptions: () => ({
        emulateAllStores: config.emulateAllStores,
        ...(reaperBuffers ? { selfReap: reaperBuffers } : {}),
        stepHook: hooks.vcpuStepHook,
      }),
    });
    if (config.trackPages > 0) {
      track = await PageTrackRun.start({
        vm,
        slots,
        workers: fleet.workers,
        vcpus: config.vcpus,
        seed: config.seed,
        trackPages: config.trackPages,
        trackRingEntries: config.trackRingEntries,
        timeoutMs: CONTROL_TIMEOUT_MS,
      });
    }

    for (let k = 1; k <= config.iterations; k++) {
      const report = await runIteration(k);
      summary.iterations = k;
      hooks.onIteration?.(report);
    }
  } catch (e) {
    summary.error = isKvmError(e) ? e.message : describeFailure(e, fleet);
  } finally {
    const err = await fleet.shutdown();
    if (err !== null && summary.error === null) summary.error = err;
  }

  const st = vm.stats();
  const cs = collector.stats;
  summary.guestWrites = sumVcpu('INSTRUCTIONS');
  summary.guestStores = sumVcpu('STORES');
  summary.faults = sumVcpu('FAULTS');
  summary.spuriousFaults = sumVcpu('SPURIOUS_FAULTS');
  summary.pushes = sumVcpu('PUSHES');
  summary.ringFullExits = sumVcpu('RING_FULL_EXITS');
  summary.stallMs = round3(sumVcpu('STALL_NS') / 1e6);
  for (let i = 0; i < config.vcpus; i++) {
    summary.maxStallMs = Math.max(summary.maxStallMs, vm.vcpuBlock(i).f64[VcpuLayout.floats.STALL_MAX_NS]! / 1e6);
  }
  summary.maxStallMs = round3(summary.maxStallMs);
  summary.pagesHarvested = cs.records;
  summary.resetCalls = cs.resetCalls;
  summary.entriesReset = cs.entriesReset;
  summary.resetMismatches = cs.resetMismatches;
  summary.getCalls = st.getCalls;
  summary.clearCalls = st.clearCalls;
  summary.deviceWrites = sumDevice('WRITES');
  summary.deviceWritesLost = sumDevice('LOST');
  summary.pagesCopied = copier.pagesCopied;
  summary.pagesResent = copier.pagesResent;
  summary.falsePositives = copier.pagesResent;
  summary.falsePositiveRate = copier.pagesCopied > 0 ? Math.round((copier.pagesResent / copier.pagesCopied) * 1e6) / 1e6 : 0;
  summary.duplicates += copier.duplicates;
  summary.duplicateRecords = copier.duplicates;
  summary.kernelWarnings = st.warnings;
  summary.kernelBugs = st.kernelBugs;
  summary.tlbFlushes = st.tlbFlushes;
  summary.mmuLockMaxHoldUs = round3(st.mmuLockMaxHoldUs);
  summary.mmuLockTotalHoldUs = round3(st.mmuLockTotalHoldUs);
  const hold = (calls: number, max: number, total: number): LockHold => ({
    calls,
    mean: calls > 0 ? round3(total / calls) : 0,
    max: round3(max),
    total: round3(total),
  });
  summary.mmuLockHoldUs = {
    get: hold(st.getCalls, st.mmuHoldGetMaxUs, st.mmuHoldGetTotalUs),
    clear: hold(st.clearCalls, st.mmuHoldClearMaxUs, st.mmuHoldClearTotalUs),
    reset: hold(st.resetCalls, st.mmuHoldResetMaxUs, st.mmuHoldResetTotalUs),
  };
  summary.elapsedMs = round3(now() - t0);
  summary.pageTrack = track?.summary() ?? null;
  summary.ok =
    (summary.pageTrack?.ok ?? true) &&
    summary.error === null &&
    summary.iterations === config.iterations &&
    summary.lostPages === 0 &&
    summary.wrongValues === 0 &&
    summary.copyMismatches === 0 &&
    summary.resetMismatches === 0 &&
    summary.badEntries === 0 &&
    summary.kernelWarnings === 0 &&
    summary.kernelBugs === 0;
  return summary;

  async function runIteration(k: number): Promise<IterationReport> {
    const tIter = now();
    const writes0 = sumVcpu('INSTRUCTIONS');
    const deviceWrites0 = sumDevice('WRITES');
    const full0 = sumVcpu('RING_FULL_EXITS');
    const records0 = collector.stats.records;
    const copied0 = copier.pagesCopied;
    const resent0 = copier.pagesResent;
    let collections = 0;
    const collect = (final: boolean): void => {
      copier.beginRound();
      collector.collect(sink, final);
      // Page-track notifications too: a vCPU stalled on a full notification ring waits for this.
      track?.drain();
      collections++;
    };
    oracle.beginIteration(k);
    track?.beginIteration(k);
    Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, k);
    control.resumeAll();

    const toggle = hooks.toggleLog?.iteration === k ? hooks.toggleLog : undefined;
    const excluded = new Set<number>();
    let toggleStage = 0;
    let lastPeriodic = now();
    let lastProgress = now();
    let lastWrites = writes0;
    let first = true;
    for (;;) {
      const bell = control.doorbell();
      const stalled: number[] = [];
      for (let i = 0; i < config.vcpus; i++) {
        const state = control.state(i);
        if (state === VcpuState.RING_FULL_STALL) stalled.push(i);
      }
      const dead = control.anyDeadThread();
      if (dead !== null) throw new Error(`${dead} thread died in iteration ${k}`);
      const t = now();
      const poll = hooks.onPoll?.(k) ?? null;
      if (poll !== null && poll.kick >= 0 && poll.kick < config.vcpus) vm.kickVcpu(poll.kick);
      if (first || stalled.length > 0 || t - lastPeriodic >= config.harvestIntervalMs || poll?.harvest === true) {
        // Harvest + reset (and copy) first, then release the stalled threads: QEMU's reaction to exit 31.
        if (config.log === 'ring') wedgeDetector.arm(vm, stalled);
        collect(false);
        const wedged = config.log === 'ring' ? wedgeDetector.check(vm, (i) => control.state(i) === VcpuState.RING_FULL_STALL) : null;
        if (wedged !== null) throw new Error(`${wedged} (iteration ${k})`);
        for (const i of stalled) control.wakeStalled(i);
        lastPeriodic = t;
        first = false;
      }
      if (toggle) {
        const frac = (t - tIter) / config.intervalMs;
        if (toggleStage === 0 && frac >= 1 / 3) {
          vm.setLogDirty(toggle.slotId, false);
          const enc = encodeSlot(0, toggle.slotId);
          oracle.excludeSlot(enc);
          excluded.add(enc);
          toggleStage = 1;
        } else if (toggleStage === 1 && frac >= 2 / 3) {
          vm.setLogDirty(toggle.slotId, true);
          toggleStage = 2;
        }
      }
      // Page write-tracking's work while the vCPUs run (it never blocks this loop).
      track?.step((t - tIter) / config.intervalMs);
      const trackReady = track?.iterationDone ?? true;
      const writes = sumVcpu('INSTRUCTIONS');
      if (writes !== lastWrites) {
        lastWrites = writes;
        lastProgress = t;
      } else if (t - lastProgress > CONTROL_TIMEOUT_MS && !control.allVcpusIn(VcpuState.HALTED)) {
        throw new Error(`no guest progress for ${CONTROL_TIMEOUT_MS} ms in iteration ${k} (${control.describe()})`);
      }
      if (config.writesPerIteration > 0) {
        // A fixed amount of work: the iteration ends when every vCPU has halted.
        if (control.allVcpusIn(VcpuState.HALTED) && (!toggle || toggleStage === 2) && trackReady) break;
      } else if (t - tIter >= config.intervalMs && writes - writes0 >= 256 && (!toggle || toggleStage === 2) && trackReady) {
        // dirty_log_test's floor: at least 256 writes per iteration, whatever the interval.
        break;
      }
      // While a page-track (un)registration is in progress it needs this thread's event loop
      // (worker replies, waitAsync wake-ups); waitDoorbell resolves without yielding to it
      // when the doorbell has already moved.
      if (track?.busy) await yieldToEventLoop();
      await control.waitDoorbell(bell, 1);
    }

    let verdict: ReturnType<DirtyLogOracle['verify']>;
    let mismatch: ReturnType<DirtyPageCopier['compare']>;
    if (faults.noFinalStop) {
      // Mutant: the "final" sync while the writers still run; they are parked only afterwards.
      collect(true);
      recordPending();
      verdict = oracle.verify();
      mismatch = copier.compare(excluded);
      control.pauseAll();
      await control.waitAllParked(CONTROL_TIMEOUT_MS);
    } else {
      control.pauseAll();
      await control.waitAllParked(CONTROL_TIMEOUT_MS);
      collect(true);
      recordPending();
      verdict = oracle.verify();
      mismatch = copier.compare(excluded);
    }
    const trackVerdict = track?.verifyIteration();
    const trackMismatches = trackVerdict ? trackVerdict.shadowMismatches + trackVerdict.mirrorMismatches : 0;
    // A lost page is a write no later record reported. The oracle sees it when nothing reported
    // the page in the whole iteration; the copy check also when a write came after the page's
    // last report. Count each page once.
    const lost = new Set<number>(verdict.lostIndices);
    for (const g of mismatch.indices) lost.add(g);
    summary.lostPages += lost.size;
    summary.wrongValues += verdict.wrongValues;
    summary.duplicates += verdict.duplicates;
    summary.badEntries += verdict.badEntries;
    summary.copyMismatches += mismatch.mismatches;
    for (const d of verdict.details) if (summary.lost.length < 20) summary.lost.push(d);
    for (const d of mismatch.details) if (summary.mismatches.length < 20) summary.mismatches.push(d);
    return {
      iteration: k,
      guestWrites: sumVcpu('INSTRUCTIONS') - writes0,
      deviceWrites: sumDevice('WRITES') - deviceWrites0,
      recordsCollected: collector.stats.records - records0,
      ringFullExits: sumVcpu('RING_FULL_EXITS') - full0,
      collections,
      pagesReported: verdict.pagesReported,
      pagesChanged: verdict.pagesChanged,
      pagesCopied: copier.pagesCopied - copied0,
      pagesResent: copier.pagesResent - resent0,
      lostPages: lost.size,
      wrongValues: verdict.wrongValues,
      copyMismatches: mismatch.mismatches,
      trackMismatches,
      elapsedMs: round3(now() - tIter),
    };

    function recordPending(): void {
      const pending: PendingStore[] = [];
      for (let i = 0; i < config.vcpus; i++) {
        const b = vm.vcpuBlock(i);
        if (Atomics.load(b.i32, VcpuLayout.words.PENDING_VALID) === 1) {
          pending.push({
            vcpu: i,
            gfn: b.f64[VcpuLayout.floats.PENDING_GFN]!,
            value: Atomics.load(b.i32, VcpuLayout.words.PENDING_VALUE),
          });
        }
      }
      oracle.setPending(pending);
    }
  }
}

/** The ring run of issue 2's contract: `runDirtyLog` with `log: 'ring'` (the default). */
export const runRing = runDirtyLog;
