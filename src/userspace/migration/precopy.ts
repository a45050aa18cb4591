/**
 * The parts of a pre-copy live migration and its steps, which `runMigration` (migration.ts)
 * takes in order: start the guest; start logging; iterative rounds until converged (or the
 * round limit); the stop-and-copy; the verification.
 *
 * The parts: the source VM and its threads (GuestFleet), the dirty tracker of the log mode
 * (where the dirty set comes from), the page pump (sending pages over the link), the
 * destination memory and how pages reach it (in this thread, or through the wire to a
 * destination thread), and dirty-limit when asked for.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { MS_PER_S, MiB, NS_PER_MS } from '../../base/units.js';
import { now } from '../../base/clock.js';
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import type { PageRange, WorkloadConfig } from '../../guest/workloads.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { withTimeout } from '../../platform/async-wait.js';
import { type UserspaceFaults, userspaceFaults } from '../faults.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, type RingSpaceFactory, buildGuestVm } from '../guest-fleet.js';
import type { VcpuControlPlane } from '../vcpu-control.js';
import type { SpawnVcpuWorker } from '../vcpu-worker-api.js';
import { BandwidthPacer } from './bandwidth.js';
import { compareDestination } from './destination-check.js';
import { DestinationMemory, LocalSender, type PageSender, type WireBuffers, WireSender, createWire } from './destination.js';
import { DirtyLimitController } from './dirty-limit.js';
import { DirtyTracker } from './dirty-tracker.js';
import type { LogCollector } from '../log-collectors.js';
import { GuestService } from './guest-service.js';
import { type MigrationConfig, bandwidthBytesPerSecond } from './migration-config.js';
import type { RoundKind, RoundReport } from './migration-report.js';
import { type DestinationCheck, type MigrationStatistics, type RoundCounters, type RoundMeasures, type StopAndCopyTimes, roundReport } from './migration-summary.js';
import { PagePump, type PumpHooks } from './page-pump.js';
import { SlotPages } from './slot-pages.js';

/** The link may burst this much after a pause (a harvest, a sync). */
const LINK_BURST_MS = 5;
/** Wire slots between the loop and a destination thread (8 MiB of pages in flight). */
const WIRE_SLOTS = 2048;

export interface PrecopyHooks extends PumpHooks {
  readonly spawn: SpawnVcpuWorker;
  readonly onRound?: (r: RoundReport) => void;
  /** A user's harvester (--harvester) in the log mode's collector's place. */
  readonly createCollector?: (vm: Vm, vcpus: number, slots: readonly Memslot[]) => LogCollector;
  /** Where the rings go (a WebAssembly harvester's memory, HarvesterDefinition.ringSpace). */
  readonly ringSpace?: RingSpaceFactory;
  /** Once the source VM is built, before its threads start: the VM and each vCPU's dirty-limit block (none without a limit). */
  readonly onGuestBuilt?: (vm: Vm, throttles: readonly SharedArrayBuffer[] | null) => void;
}

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

export class PrecopyMigration {
  readonly vm: Vm;
  readonly slots: Memslot[];
  readonly fleet: GuestFleet;
  readonly sender: PageSender;
  private readonly control: VcpuControlPlane;
  private readonly sources: Int32Array[];
  private readonly limiter: DirtyLimitController | null;
  private readonly destination: DestinationMemory;
  private readonly wire: WireBuffers | null;
  private readonly pacer: BandwidthPacer;
  readonly tracker: DirtyTracker;
  private readonly guest: GuestService;
  private readonly pump: PagePump;
  private readonly faults: UserspaceFaults;
  /** Every round that ended, the stop-and-copy included. */
  readonly rounds: RoundReport[] = [];
  converged = false;
  /** Cancelled on request during the rounds: no stop-and-copy, no verification. */
  interrupted = false;
  stop: StopAndCopyTimes | null = null;
  check: DestinationCheck | null = null;
  private migrationStartedAt = 0;
  private lastSyncAt = 0;

  constructor(
    private readonly config: MigrationConfig,
    private readonly hooks: PrecopyHooks,
  ) {
    // Memslots are created with logging off: migration turns it on while the guest runs.
    ({ vm: this.vm, slots: this.slots } = buildGuestVm(config, false, hooks.ringSpace));
    const pages = new SlotPages(this.slots);
    this.sources = this.slots.map((s) => new Int32Array(s.buffers.memory));
    this.fleet = new GuestFleet(this.vm, config.vcpus, config.deviceWriters, hooks.spawn);
    this.control = this.fleet.control;
    this.faults = userspaceFaults(config.mutants);
    this.limiter = config.dirtyLimitMiBs > 0 ? new DirtyLimitController(this.vm, config.vcpus, config.dirtyLimitMiBs, config.dirtyLimitPeriodMs) : null;
    this.destination = new DestinationMemory(this.slots.map((s) => s.pageCount));
    this.wire = config.destinationThread ? createWire(WIRE_SLOTS) : null;
    this.sender = this.wire ? new WireSender(this.wire) : new LocalSender(this.destination);
    this.pacer = new BandwidthPacer(bandwidthBytesPerSecond(config), LINK_BURST_MS, PAGE_SIZE);
    // The pump is made just below; the tracker only sends through it (copy-before-reset) once both exist.
    const sendBeforeReset = (g: number): void => this.pump.sendUnpaced(g);
    this.tracker = new DirtyTracker(config.log, this.vm, config.vcpus, this.slots, pages, config.clearChunkPages, this.faults, sendBeforeReset, hooks.createCollector?.(this.vm, config.vcpus, this.slots) ?? null);
    this.guest = new GuestService(this.control, config.log, () => this.tracker.collectForStall(), this.limiter);
    const direct = new LocalSender(this.destination);
    this.pump = new PagePump(pages, this.sources, this.tracker, this.sender, direct, this.pacer, this.guest, hooks);
    const limiter = this.limiter;
    hooks.onGuestBuilt?.(this.vm, limiter ? Array.from({ length: config.vcpus }, (_, i) => limiter.buffer(i)) : null);
  }

  /** Start the destination thread (if any) and the guest's threads, and let the guest run its warm-up. */
  async startGuest(): Promise<void> {
    const { config } = this;
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: workingSetRanges(this.slots, config.workingSetBytes),
      burstPages: config.burstPages,
      burstPercent: config.burstPercent,
      dirtyPagesPerSecond: (config.dirtyRateMiBs * MiB) / PAGE_SIZE,
    };
    if (this.wire) {
      const destinationWorker = this.hooks.spawn(config.vcpus + config.deviceWriters);
      this.fleet.adopt(destinationWorker, 'the destination');
      await withTimeout(
        destinationWorker.api.startDestination({ wire: this.wire, destinations: this.destination.buffers }),
        CONTROL_TIMEOUT_MS,
        'starting the destination thread',
      );
    }
    await this.fleet.start({
      workload,
      deviceWorkload: { ...workload, dirtyPagesPerSecond: 0 },
      deviceIntervalUs: config.deviceIntervalUs,
      vcpuOptions: (i) => (this.limiter ? { throttle: this.limiter.buffer(i) } : {}),
    });
    this.publishRound(1);
    this.control.resumeAll();
    if (config.warmupMs > 0) await this.guest.sleep(config.warmupMs);
  }

  /** The migration starts (memory_global_dirty_log_start): logging on, every page to send, a first sync. */
  startLogging(): void {
    this.migrationStartedAt = now();
    for (const s of this.slots) this.vm.setLogDirty(s.id, true);
    this.tracker.toSend.setAll();
    this.tracker.sync(false);
    this.lastSyncAt = now();
  }

  /** Rounds (the bulk pass first) until converged or the round limit; returns the last round's number. */
  async iterate(): Promise<number> {
    for (let round = 1; ; round++) {
      const converged = await this.iterativeRound(round);
      if (this.hooks.shouldStop?.() === true) {
        this.interrupted = true;
        return round;
      }
      if (converged) {
        this.converged = true;
        return round;
      }
      if (round >= this.config.maxRounds) return round;
    }
  }

  /**
   * Send every page marked, then sync: collect the dirty set. Returns whether the migration
   * converged: the pages left would go over the link within the maximum downtime.
   */
  private async iterativeRound(round: number): Promise<boolean> {
    this.publishRound(round);
    const kind: RoundKind = round === 1 ? 'bulk' : 'iterate';
    const startedAt = now();
    const before = this.counters();
    this.pump.beginPass();
    await this.pump.pass(round, kind);
    const dirtyPages = this.tracker.sync(false);
    const syncedAt = now();
    // Counted after the sync: the copy-before-reset mutant sends from inside it.
    const { sent, resent } = this.pump;
    const remainingPages = this.tracker.toSend.count();
    const expectedDowntimeMs = (remainingPages * PAGE_SIZE * MS_PER_S) / this.pacer.bytesPerSecond;
    const dirtyLimitActive = this.limiter
      ? this.limiter.considerTrigger(dirtyPages * PAGE_SIZE, sent * PAGE_SIZE, syncedAt, syncedAt - this.migrationStartedAt)
      : false;
    this.record({
      round, kind, pagesSent: sent, pagesResent: resent, startedAt, endedAt: syncedAt, previousSyncAt: this.lastSyncAt,
      dirtyPages, remainingPages, expectedDowntimeMs, before, after: this.counters(), dirtyLimitActive,
    });
    this.lastSyncAt = syncedAt;
    return expectedDowntimeMs <= this.config.maxDowntimeMs;
  }

  /** Park every writer, sync once more (ring-with-bitmap's device bitmap last), send the rest. */
  async stopAndCopy(round: number): Promise<void> {
    this.publishRound(round);
    const before = this.counters();
    this.pump.beginPass();
    const stoppedAt = now();
    const parkedAt = this.faults.noFinalStop ? await this.copyThenPark(round) : await this.parkThenCopy(round);
    const doneAt = now();
    this.stop = {
      parkMs: parkedAt - stoppedAt,
      // Downtime: every vCPU parked → the last page applied. (Under the no-final-stop mutant the
      // copy ends before the vCPUs park: 0.)
      downtimeMs: Math.max(0, doneAt - parkedAt),
      finalPages: this.pump.sent,
      migrationMs: doneAt - this.migrationStartedAt,
    };
    this.record({
      round, kind: 'stop-and-copy', pagesSent: this.pump.sent, pagesResent: this.pump.resent, startedAt: stoppedAt, endedAt: doneAt,
      previousSyncAt: this.lastSyncAt, dirtyPages: 0, remainingPages: 0, expectedDowntimeMs: 0, before, after: this.counters(),
      dirtyLimitActive: this.limiter?.active ?? false,
    });
  }

  /** Returns when every writer was parked. */
  private async parkThenCopy(round: number): Promise<number> {
    await this.parkWriters();
    const parkedAt = now();
    await this.finalCopy(round);
    return parkedAt;
  }

  /** Mutant: the "final" sync and copy while the guest still runs; it is parked only afterwards. */
  private async copyThenPark(round: number): Promise<number> {
    await this.finalCopy(round);
    await this.parkWriters();
    return now();
  }

  private async finalCopy(round: number): Promise<void> {
    this.tracker.sync(true);
    await this.pump.pass(round, 'stop-and-copy');
    await this.sender.drain(CONTROL_TIMEOUT_MS);
  }

  private async parkWriters(): Promise<void> {
    this.control.pauseAll();
    await this.control.waitAllParked(CONTROL_TIMEOUT_MS);
  }

  /** With every writer parked: destination == source, byte for byte. */
  verify(): void {
    this.check = compareDestination(this.slots, this.sources, this.destination.views);
  }

  /** The round the guest writes into the pages (a mismatch then says from which round a write came). */
  private publishRound(round: number): void {
    Atomics.store(this.fleet.globals.i32, GuestGlobalsLayout.words.ITERATION, round);
  }

  private record(measures: RoundMeasures): void {
    const report = roundReport(measures);
    this.rounds.push(report);
    this.hooks.onRound?.(report);
  }

  private counters(): RoundCounters {
    return {
      guestWrites: this.fleet.sumVcpu('INSTRUCTIONS'),
      ringFullExits: this.fleet.sumVcpu('RING_FULL_EXITS'),
      stallMs: this.fleet.sumVcpu('STALL_NS') / NS_PER_MS,
      throttleSleepMs: this.limiter ? this.limiter.sleepTotals().ms : 0,
    };
  }

  /** Everything the migration measured, for its summary (read once the threads have ended). */
  statistics(): Omit<MigrationStatistics, 'config' | 'error' | 'totalMs'> {
    const { fleet, vm, limiter } = this;
    const vmStats = vm.stats();
    return {
      converged: this.converged,
      interrupted: this.interrupted,
      rounds: this.rounds,
      stop: this.stop,
      check: this.check,
      vcpus: {
        instructions: fleet.sumVcpu('INSTRUCTIONS'),
        ringFullExits: fleet.sumVcpu('RING_FULL_EXITS'),
        stallNs: fleet.sumVcpu('STALL_NS'),
        maxStallNs: fleet.maxVcpu('STALL_MAX_NS'),
      },
      deviceWrites: fleet.sumDevice('WRITES'),
      tracker: this.tracker.stats,
      vm: { getCalls: vmStats.getCalls, clearCalls: vmStats.clearCalls, warnings: vm.warnings },
      dirtyLimit: limiter ? { quotaMiBs: limiter.quotaMiBs, periodMs: limiter.periodMs, stats: limiter.stats, sleeps: limiter.sleepTotals() } : null,
    };
  }
}
