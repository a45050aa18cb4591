/**
 * Pre-copy live migration, userspace's side (what QEMU's migration thread does), against a VM
 * whose vCPU worker threads keep writing guest memory throughout:
 *
 *   start dirty logging on every memslot; mark every page to send; first sync;
 *   round 1 (bulk) .. n: send every page marked, at the link's bandwidth, while servicing the
 *     guest (ring-full stalls: harvest + reset, release; dirty-limit: measure and throttle);
 *     then sync (collect the dirty set: ring harvest + reset, legacy GET, or manual GET with a
 *     CLEAR just before each chunk is sent) and decide: converged when the pages left would go
 *     over the link within the maximum downtime, else another round, up to the round limit;
 *   stop-and-copy: kick and park every vCPU and device, sync once more (ring-with-bitmap's
 *     device bitmap last), send the rest, and compare destination and source byte for byte.
 *
 * The guest writes the current round number into each page it writes, so a mismatch says from
 * which round the missing write came. Platform-neutral: the caller supplies how to spawn a
 * worker (Node or browser); every wait is asynchronous and bounded.
 */
import { PAGE_SIZE, PAGE_WORDS } from '../../abi/constants.js';
import { isKvmError } from '../../abi/errno.js';
import { GuestGlobalsLayout, GuestPageWords } from '../../guest/guest-memory.js';
import type { PageRange, WorkloadConfig } from '../../guest/workloads.js';
import type { Memslot } from '../../kernel/memslots.js';
import { mutantNames } from '../known-bugs.js';
import { userspaceFaults } from '../faults.js';
import { now } from '../../base/clock.js';
import { withTimeout } from '../../platform/async-wait.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, buildGuestVm, describeFailure, round3 } from '../guest-fleet.js';
import type { SpawnVcpuWorker } from '../vcpu-worker-api.js';
import { BandwidthPacer } from './bandwidth.js';
import { DestinationMemory, LocalSender, type PageSender, WireSender, createWire } from './destination.js';
import { DirtyLimitController } from './dirty-limit.js';
import { DirtyTracker } from './dirty-tracker.js';
import { type MigrationConfig, bandwidthBytesPerSecond, validateMigrationConfig } from './migration-config.js';
import type { MigrationSummary, PageMismatch, RoundKind, RoundReport } from './migration-report.js';
import { PageHeaderHistory, pageWordsEqual } from '../page-copy.js';
import { SlotPages } from './slot-pages.js';

export interface MigrationProgress {
  readonly round: number;
  readonly kind: RoundKind;
  readonly pagesSent: number;
  readonly pagesToSend: number;
}

export interface MigrationHooks {
  readonly spawn: SpawnVcpuWorker;
  /** Once, with the validated configuration, before any thread starts. */
  readonly onStart?: (config: MigrationConfig) => void;
  /** A round's pass begins with `pagesToSend` pages marked. */
  readonly onRoundStart?: (p: MigrationProgress) => void;
  /** During a pass, at most every `progressIntervalMs`. */
  readonly onProgress?: (p: MigrationProgress) => void;
  readonly onRound?: (r: RoundReport) => void;
  readonly progressIntervalMs?: number;
}

/** Pages sent between two looks at the guest (stalls, dirty-limit, dead threads). */
const BATCH_PAGES = 64;
/** The link may burst this much after a pause (a harvest, a sync). */
const LINK_BURST_MS = 5;
/** Wire slots between the loop and a destination thread (8 MiB of pages in flight). */
const WIRE_SLOTS = 2048;
const MAX_MISMATCH_DETAILS = 20;


/** The guest's pages: the first `workingSetBytes` of memory (all of it when 0). */
function workingSetRanges(slots: readonly Memslot[], workingSetBytes: number): PageRange[] {
  let left = workingSetBytes > 0 ? workingSetBytes / PAGE_SIZE : Number.POSITIVE_INFINITY;
  const ranges: PageRange[] = [];
  for (const s of slots) {
    if (left <= 0) break;
    const n = Math.min(s.pageCount, left);
    ranges.push({ baseGfn: s.baseGfn, pageCount: n });
    left -= n;
  }
  return ranges;
}

export async function runMigration(input: Partial<MigrationConfig>, hooks: MigrationHooks): Promise<MigrationSummary> {
  const config = validateMigrationConfig(input);
  hooks.onStart?.(config);
  const tRun = now();
  // Memslots are created with logging off: migration turns it on while the guest runs.
  const { vm, slots } = buildGuestVm(config, false);
  const pages = new SlotPages(slots);
  const srcViews = slots.map((s) => new Int32Array(s.buffers.memory));
  const fleet = new GuestFleet(vm, config.vcpus, config.deviceWriters, hooks.spawn);
  const { globals, control } = fleet;
  const limiter =
    config.dirtyLimitMiBs > 0 ? new DirtyLimitController(vm, config.vcpus, config.dirtyLimitMiBs, config.dirtyLimitPeriodMs) : null;
  const destination = new DestinationMemory(slots.map((s) => s.pageCount));
  const wire = config.destinationThread ? createWire(WIRE_SLOTS) : null;
  const sender: PageSender = wire ? new WireSender(wire) : new LocalSender(destination);
  const directSender = new LocalSender(destination);
  const pacer = new BandwidthPacer(bandwidthBytesPerSecond(config), LINK_BURST_MS, PAGE_SIZE);

  // Resend accounting: the header of each page as last sent, read from the copy just made.
  const history = new PageHeaderHistory(pages.total);
  let passSent = 0;
  let passResent = 0;
  // (`tracker` is created just below; sendPage only runs once it exists.)
  const sendPage = (g: number, via: PageSender): void => {
    const si = pages.slotIndexOf(g);
    const page = g - pages.starts[si]!;
    tracker.beforeSend(si, page);
    via.send(si, page, srcViews[si]!);
    if (history.record(g, via.copyWords, via.copyBase)) passResent++;
    passSent++;
  };
  // The copy-before-reset mutant sends straight from the harvest, before the reset. Its bug is
  // the order, not the volume: these sends do not wait for (or draw on) the link.
  const sendBeforeReset = (g: number): void => sendPage(g, directSender);
  const tracker = new DirtyTracker(config.log, vm, config.vcpus, slots, pages, config.clearChunkPages, userspaceFaults(config.mutants), sendBeforeReset);
  const collectForStall = (): void => tracker.collectForStall();

  const summary: MigrationSummary = {
    ok: false,
    verified: false,
    converged: false,
    seed: config.seed,
    log: config.log,
    vcpus: config.vcpus,
    memoryBytes: config.memoryBytes,
    workingSetBytes: config.workingSetBytes > 0 ? config.workingSetBytes : config.memoryBytes,
    workload: config.workload,
    dirtyRateMiBs: config.dirtyRateMiBs,
    bandwidthMiBs: round3(bandwidthBytesPerSecond(config) / 2 ** 20),
    maxDowntimeMs: config.maxDowntimeMs,
    maxRounds: config.maxRounds,
    dirtyLimitMiBs: config.dirtyLimitMiBs,
    destinationThread: config.destinationThread,
    mutants: mutantNames(config.mutants),
    rounds: 0,
    pagesSent: 0,
    pagesResent: 0,
    bytesSent: 0,
    parkMs: 0,
    downtimeMs: 0,
    finalPages: 0,
    migrationMs: 0,
    totalMs: 0,
    guestWrites: 0,
    ringFullExits: 0,
    stallMs: 0,
    maxStallMs: 0,
    records: 0,
    badRecords: 0,
    resetCalls: 0,
    entriesReset: 0,
    resetMismatches: 0,
    getCalls: 0,
    clearCalls: 0,
    deviceWrites: 0,
    kernelWarnings: 0,
    dirtyLimit: null,
    mismatchedPages: 0,
    mismatches: [],
    roundReports: [],
    error: null,
  };

  const throttleSleepMs = (): number => (limiter ? limiter.sleepTotals().ms : 0);

  try {
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: workingSetRanges(slots, config.workingSetBytes),
      burstPages: config.burstPages,
      burstPercent: config.burstPercent,
      dirtyPagesPerSecond: (config.dirtyRateMiBs * 2 ** 20) / PAGE_SIZE,
    };
    if (wire) {
      const destinationWorker = hooks.spawn(config.vcpus + config.deviceWriters);
      fleet.adopt(destinationWorker);
      await withTimeout(
        destinationWorker.api.startDestination({ wire, destinations: destination.buffers }),
        CONTROL_TIMEOUT_MS,
        'starting the destination thread',
      );
    }
    await fleet.start({
      workload,
      deviceWorkload: { ...workload, dirtyPagesPerSecond: 0 },
      deviceIntervalUs: config.deviceIntervalUs,
      vcpuOptions: (i) => (limiter ? { throttle: limiter.buffer(i) } : {}),
    });

    Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
    control.resumeAll();
    if (config.warmupMs > 0) await sleepServicing(config.warmupMs);

    // --- Migration starts: dirty logging on (memory_global_dirty_log_start), everything to send.
    const tMig = now();
    for (const s of slots) vm.setLogDirty(s.id, true);
    tracker.toSend.setAll();
    tracker.sync(false);
    let lastSync = now();

    let round = 1;
    for (;;) {
      Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, round);
      const kind: RoundKind = round === 1 ? 'bulk' : 'iterate';
      const tRound = now();
      const before = snapshotCounters();
      passSent = 0;
      passResent = 0;
      await sendPass(round, kind);
      const dirtyPages = tracker.sync(false);
      const tSync = now();
      // Counted after the sync: the copy-before-reset mutant sends from inside it.
      const sent = passSent;
      const resent = passResent;
      const remaining = tracker.toSend.count();
      const expectedDowntimeMs = (remaining * PAGE_SIZE * 1000) / pacer.bytesPerSecond;
      const active = limiter
        ? limiter.considerTrigger(dirtyPages * PAGE_SIZE, sent * PAGE_SIZE, tSync, tSync - tMig)
        : false;
      const report = roundReport(round, kind, sent, resent, tRound, tSync, lastSync, dirtyPages, remaining, expectedDowntimeMs, before, active);
      lastSync = tSync;
      summary.roundReports.push(report);
      hooks.onRound?.(report);
      if (expectedDowntimeMs <= config.maxDowntimeMs) {
        summary.converged = true;
        break;
      }
      if (round >= config.maxRounds) break;
      round++;
    }

    // --- Stop-and-copy.
    const finalRound = round + 1;
    Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, finalRound);
    const before = snapshotCounters();
    passSent = 0;
    passResent = 0;
    const tStop = now();
    let tParked: number;
    if (userspaceFaults(config.mutants).noFinalStop) {
      // Mutant: the "final" sync and copy while the guest still runs; it is parked only afterwards.
      tracker.sync(true);
      await sendPass(finalRound, 'stop-and-copy');
      await sender.drain(CONTROL_TIMEOUT_MS);
      control.pauseAll();
      await control.waitAllParked(CONTROL_TIMEOUT_MS);
      tParked = now();
    } else {
      control.pauseAll();
      await control.waitAllParked(CONTROL_TIMEOUT_MS);
      tParked = now();
      tracker.sync(true);
      await sendPass(finalRound, 'stop-and-copy');
      await sender.drain(CONTROL_TIMEOUT_MS);
    }
    const tDone = now();
    summary.parkMs = round3(tParked - tStop);
    // Downtime as the issue defines it: every vCPU parked → the last page applied. (Under the
    // no-final-stop mutant the copy ends before the vCPUs park: 0.)
    summary.downtimeMs = round3(Math.max(0, tDone - tParked));
    summary.finalPages = passSent;
    summary.migrationMs = round3(tDone - tMig);
    const final = roundReport(finalRound, 'stop-and-copy', passSent, passResent, tStop, tDone, lastSync, 0, 0, 0, before, limiter?.active ?? false);
    summary.roundReports.push(final);
    hooks.onRound?.(final);

    // --- Verification, with every writer parked: destination == source, byte for byte.
    verify();
  } catch (e) {
    summary.error = isKvmError(e) ? e.message : describeFailure(e, fleet);
  } finally {
    sender.close();
    const err = await fleet.shutdown();
    if (err !== null && summary.error === null) summary.error = err;
  }

  const ts = tracker.stats;
  summary.rounds = summary.roundReports.length;
  for (const r of summary.roundReports) {
    summary.pagesSent += r.pagesSent;
    summary.pagesResent += r.pagesResent;
  }
  summary.bytesSent = summary.pagesSent * PAGE_SIZE;
  summary.guestWrites = fleet.sumVcpu('INSTRUCTIONS');
  summary.ringFullExits = fleet.sumVcpu('RING_FULL_EXITS');
  summary.stallMs = round3(fleet.sumVcpu('STALL_NS') / 1e6);
  summary.maxStallMs = round3(fleet.maxVcpu('STALL_MAX_NS') / 1e6);
  summary.records = ts.records;
  summary.badRecords = ts.badRecords;
  summary.resetCalls = ts.resetCalls;
  summary.entriesReset = ts.entriesReset;
  summary.resetMismatches = ts.resetMismatches;
  summary.getCalls = vm.stats().getCalls;
  summary.clearCalls = vm.stats().clearCalls;
  summary.deviceWrites = fleet.sumDevice('WRITES');
  summary.kernelWarnings = vm.warnings;
  if (limiter) {
    const sleeps = limiter.sleepTotals();
    summary.dirtyLimit = {
      quotaMiBs: limiter.quotaMiBs,
      periodMs: limiter.periodMs,
      startedAtMs: limiter.stats.startedAtMs === null ? null : round3(limiter.stats.startedAtMs),
      adjustments: limiter.stats.adjustments,
      ratesMiBs: limiter.stats.ratesMiBs.map(round3),
      throttleUs: limiter.stats.throttleUs.slice(),
      history: limiter.stats.history,
      sleepMs: round3(sleeps.ms),
      sleeps: sleeps.sleeps,
    };
  }
  summary.totalMs = round3(now() - tRun);
  summary.ok =
    summary.error === null &&
    summary.verified &&
    summary.resetMismatches === 0 &&
    summary.badRecords === 0 &&
    summary.kernelWarnings === 0;
  return summary;

  // -------------------------------------------------------------------------------------------

  function snapshotCounters(): { writes: number; full: number; stallMs: number; throttleMs: number } {
    return {
      writes: fleet.sumVcpu('INSTRUCTIONS'),
      full: fleet.sumVcpu('RING_FULL_EXITS'),
      stallMs: fleet.sumVcpu('STALL_NS') / 1e6,
      throttleMs: throttleSleepMs(),
    };
  }

  function roundReport(
    round: number,
    kind: RoundKind,
    sent: number,
    resent: number,
    t0: number,
    t1: number,
    previousSync: number,
    dirtyPages: number,
    remainingPages: number,
    expectedDowntimeMs: number,
    before: ReturnType<typeof snapshotCounters>,
    dirtyLimitActive: boolean,
  ): RoundReport {
    const since = Math.max(1e-3, t1 - previousSync);
    return {
      round,
      kind,
      pagesSent: sent,
      pagesResent: resent,
      bytesSent: sent * PAGE_SIZE,
      durationMs: round3(t1 - t0),
      dirtyPages,
      dirtyRateMiBs: round3((dirtyPages * PAGE_SIZE) / 2 ** 20 / (since / 1000)),
      remainingPages,
      expectedDowntimeMs: round3(expectedDowntimeMs),
      guestWrites: fleet.sumVcpu('INSTRUCTIONS') - before.writes,
      ringFullExits: fleet.sumVcpu('RING_FULL_EXITS') - before.full,
      stallMs: round3(fleet.sumVcpu('STALL_NS') / 1e6 - before.stallMs),
      throttleSleepMs: round3(throttleSleepMs() - before.throttleMs),
      dirtyLimitActive,
    };
  }

  /**
   * Everything the loop owes the running guest between two batches: a vCPU stalled on a full
   * ring is released after a harvest + reset (QEMU's reaction to exit 31), dirty-limit measures
   * and adjusts, and a dead thread ends the migration.
   */
  function serviceGuest(): void {
    const dead = control.anyDeadThread();
    if (dead !== null) throw new Error(`${dead} thread died during the migration`);
    if (config.log === 'ring') control.releaseRingFullStalls(collectForStall);
    limiter?.tick(now());
  }

  /** Wait `ms` (at most), waking early whenever a guest thread changes state. */
  async function idle(ms: number): Promise<void> {
    const bell = control.doorbell();
    serviceGuest();
    if (ms > 0) await control.waitDoorbell(bell, ms);
  }

  async function sleepServicing(ms: number): Promise<void> {
    const end = now() + ms;
    for (let left = ms; left > 0; left = end - now()) await idle(Math.min(left, 5));
  }

  /** One pass over `toSend`: every marked page once, at the link's pace. */
  async function sendPass(round: number, kind: RoundKind): Promise<void> {
    const toSend = tracker.toSend;
    const total = toSend.count();
    hooks.onRoundStart?.({ round, kind, pagesSent: 0, pagesToSend: total });
    const progressEvery = hooks.progressIntervalMs ?? 100;
    let lastProgress = now();
    let lastRoom = lastProgress;
    let cursor = 0;
    let sentHere = 0;
    for (;;) {
      const allowed = Math.min(pacer.available(PAGE_SIZE), sender.room(), BATCH_PAGES);
      if (allowed === 0) {
        if (sender.room() === 0) {
          // A destination that stopped applying pages (its thread died) must not hang us.
          if (now() - lastRoom > CONTROL_TIMEOUT_MS) throw new Error(`the destination applied nothing for ${CONTROL_TIMEOUT_MS} ms`);
          serviceGuest();
          await sender.waitForRoom(5);
        } else {
          await idle(pacer.waitMs(PAGE_SIZE));
        }
        continue;
      }
      lastRoom = now();
      let n = 0;
      let g = -1;
      while (n < allowed && (g = toSend.nextSet(cursor)) >= 0) {
        toSend.clear(g);
        cursor = g + 1;
        sendPage(g, sender);
        n++;
      }
      pacer.consume(n * PAGE_SIZE);
      sentHere += n;
      serviceGuest();
      const t = now();
      if (hooks.onProgress && t - lastProgress >= progressEvery) {
        lastProgress = t;
        hooks.onProgress({ round, kind, pagesSent: sentHere, pagesToSend: total });
      }
      if (g < 0) break;
    }
    tracker.finishPass();
    hooks.onProgress?.({ round, kind, pagesSent: sentHere, pagesToSend: total });
  }

  function verify(): void {
    let mismatched = 0;
    const details: PageMismatch[] = [];
    for (let si = 0; si < slots.length; si++) {
      const slot = slots[si]!;
      const src = srcViews[si]!;
      const dst = destination.views[si]!;
      for (let p = 0; p < slot.pageCount; p++) {
        const base = p * PAGE_WORDS;
        if (pageWordsEqual(src, base, dst, base)) continue;
        mismatched++;
        if (details.length < MAX_MISMATCH_DETAILS) {
          details.push({
            slot: slot.id,
            offset: p,
            gfn: slot.baseGfn + p,
            writer: src[base + GuestPageWords.WRITER_VCPU]! >>> 0,
            sourceRound: src[base + GuestPageWords.ITERATION_LO]! >>> 0,
            destinationRound: dst[base + GuestPageWords.ITERATION_LO]! >>> 0,
          });
        }
      }
    }
    summary.mismatchedPages = mismatched;
    summary.mismatches = details;
    summary.verified = mismatched === 0;
  }
}
