/**
 * The parts of one `dirtyring run` and the steps of its iterations: the VM with its memslots,
 * the vCPU and device threads (GuestFleet), the collector of the log mode, the page copier, the
 * dirty_log_test oracle, and page write-tracking's part when asked for.
 *
 *   runIteration(k): publish k, resume every writer; poll until the iteration may end
 *     (iteration-loop.ts); the final sync: park every writer, collect once more (device bitmap
 *     last); verify: the oracle on every page, and destination == source byte for byte.
 */
import type { IterationVerdict, OracleSlot } from '../checker/oracle.js';
import { DirtyLogOracle } from '../checker/oracle.js';
import { now } from '../base/clock.js';
import { GuestGlobalsLayout } from '../guest/guest-memory.js';
import type { WorkloadConfig } from '../guest/workloads.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import { type CopyComparison, DirtyPageCopier } from '../userspace/dirty-copier.js';
import { HARVEST_SKIP_PERIOD, type UserspaceFaults, userspaceFaults } from '../userspace/faults.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, buildGuestVm } from '../userspace/guest-fleet.js';
import { type LogCollector, SelfReapLogCollector, createCollector } from '../userspace/log-collectors.js';
import type { ReadyPageSink } from '../userspace/ready-page-sink.js';
import { type ReaperBuffers, SharedReaper } from '../userspace/self-reaper.js';
import type { VcpuControlPlane } from '../userspace/vcpu-control.js';
import { FindingsTally } from './findings-tally.js';
import { type IterationReport, type RunCounters, iterationReport } from './iteration-report.js';
import { IterationLoop, type PolledRun } from './iteration-loop.js';
import { LogToggle } from './log-toggle.js';
import { PageTrackRun } from './page-track-run.js';
import { pendingStores } from './pending-stores.js';
import type { RunConfig } from './run-config.js';
import type { RunHooks } from './run-hooks.js';
import type { DeviceTotals, RunStatistics, VcpuTotals } from './run-summary.js';
import { RingWedgeDetector } from './wedge-detector.js';

/** Share of a vCPU's writes that go to SMRAM through SMM (--smm-pages), in percent. */
const SMM_WRITE_PERCENT = 2;

/**
 * The collector of the run: the stress harness's or a user's harvester when the caller brings
 * one, else the log mode's. With `reaper` (config.selfReap, ring logging) the built-in ring
 * collector is the self-reaping one: the vCPU threads reap their own rings on exit 31, this
 * thread the rest. A caller's collector takes part in self-reap only by draining `reaper`
 * (LogCollector.selfReaper); any other is the rings' only reaper, with the hand-off design.
 */
function createRunCollector(config: RunConfig, vm: Vm, slots: readonly Memslot[], hooks: RunHooks, reaper: SharedReaper | null, faults: UserspaceFaults): LogCollector {
  const custom = hooks.createCollector?.(vm, config.vcpus, slots, config, reaper);
  if (custom !== undefined) return custom;
  if (reaper !== null) return new SelfReapLogCollector(vm, reaper, slots, faults);
  return createCollector(config.log, vm, config.vcpus, slots, config.clearChunkPages, faults);
}

export class DirtyLogRun implements PolledRun {
  readonly vm: Vm;
  readonly slots: Memslot[];
  readonly fleet: GuestFleet;
  readonly control: VcpuControlPlane;
  readonly collector: LogCollector;
  readonly copier: DirtyPageCopier;
  readonly oracle: DirtyLogOracle;
  /** A vCPU stalled on a full ring that a whole collection cannot unstall is wedged (see wedge-detector.ts). */
  readonly wedgeDetector = new RingWedgeDetector();
  readonly findings = new FindingsTally();
  readonly onPoll: RunHooks['onPoll'];
  /** Page write-tracking's part of the run (--track-pages), started once the threads are up. */
  private pageTrack: PageTrackRun | null = null;
  private readonly faults: UserspaceFaults;
  private readonly reaperBuffers: ReaperBuffers | undefined;
  private collections = 0;
  /** Every collected page goes to the oracle and to the copier. */
  private readonly sink: ReadyPageSink = (slot, offLo, offHi) => {
    this.oracle.report(slot, offLo, offHi);
    this.copier.copy(slot, offLo, offHi);
  };
  /** The oracle's half of the sink: for pages a harvester thread copied when it reported them. */
  private readonly reportToOracle: ReadyPageSink = (slot, offLo, offHi) => {
    this.oracle.report(slot, offLo, offHi);
  };

  /** The run's configuration; selfReap as the run does it (a caller's collector may not self-reap). */
  readonly config: RunConfig;

  constructor(
    config: RunConfig,
    private readonly hooks: RunHooks,
  ) {
    ({ vm: this.vm, slots: this.slots } = buildGuestVm(config, true, hooks.ringSpace));
    this.faults = userspaceFaults(config.mutants);
    this.fleet = new GuestFleet(this.vm, config.vcpus, config.deviceWriters, hooks.spawn);
    this.control = this.fleet.control;
    const reaper = config.selfReap ? new SharedReaper(this.vm, SharedReaper.createBuffers(this.slots, this.faults.harvestSkipsEntry ? HARVEST_SKIP_PERIOD : 0)) : null;
    this.collector = createRunCollector(config, this.vm, this.slots, hooks, reaper, this.faults);
    // The vCPUs reap only into a reaper that the run's collector drains.
    this.reaperBuffers = this.collector.selfReaper?.buffers;
    this.config = { ...config, selfReap: this.reaperBuffers !== undefined };
    this.copier = new DirtyPageCopier(this.slots);
    const oracleSlots: OracleSlot[] = this.slots.map((s) => ({
      encodedSlot: s.encodedSlot,
      id: s.id,
      baseGfn: s.baseGfn,
      pageCount: s.pageCount,
      mem32: s.mem32,
    }));
    this.oracle = new DirtyLogOracle(oracleSlots, config.seed);
    this.collector.copyOnReport?.(this.copier, this.reportToOracle);
    this.onPoll = hooks.onPoll;
  }

  /** Start every writer thread (parked), then page write-tracking's part. */
  async start(): Promise<void> {
    const { config } = this;
    // A harvester's own threads load its module first: the iterations' stall watchdog starts after.
    await this.collector.ready?.();
    // SMRAM (address space 1) is written from SMM only; devices and page tracking stay in RAM.
    const ram = this.slots.filter((s) => s.asId === 0);
    const smram = this.slots.find((s) => s.asId !== 0);
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: ram.map((s) => ({ baseGfn: s.baseGfn, pageCount: s.pageCount })),
      ...(smram && { smm: { range: { baseGfn: smram.baseGfn, pageCount: smram.pageCount }, percent: SMM_WRITE_PERCENT } }),
      burstPages: config.burstPages,
      burstPercent: config.burstPercent,
      writesPerIteration: config.writesPerIteration,
    };
    await this.fleet.start({
      workload,
      deviceIntervalUs: config.deviceIntervalUs,
      ...(this.hooks.coverage && { coverage: this.hooks.coverage }),
      vcpuOptions: () => ({
        emulateAllStores: config.emulateAllStores,
        ...(this.reaperBuffers ? { selfReap: this.reaperBuffers } : {}),
        stepHook: this.hooks.vcpuStepHook,
      }),
    });
    if (config.trackPages > 0) {
      this.pageTrack = await PageTrackRun.start({
        vm: this.vm,
        slots: ram,
        workers: this.fleet.workers,
        vcpus: config.vcpus,
        seed: config.seed,
        trackPages: config.trackPages,
        trackRingEntries: config.trackRingEntries,
        timeoutMs: CONTROL_TIMEOUT_MS,
      });
    }
  }

  get track(): PageTrackRun | null {
    return this.pageTrack;
  }

  async runIteration(k: number): Promise<IterationReport> {
    const startedAt = now();
    const start = this.counters();
    this.resumeWriters(k);
    const toggle = this.hooks.toggleLog?.iteration === k ? new LogToggle(this.vm, this.oracle, this.hooks.toggleLog.slotId) : null;
    await new IterationLoop(this, k, startedAt, start.guestWrites, toggle).runUntilDone();
    const { verdict, comparison } = await this.finalSync(toggle?.excluded ?? new Set());
    const track = this.track?.verifyIteration();
    const lostPages = this.findings.add(verdict, comparison);
    return iterationReport(
      k,
      start,
      this.counters(),
      {
        pagesReported: verdict.pagesReported,
        pagesChanged: verdict.pagesChanged,
        lostPages,
        wrongValues: verdict.wrongValues,
        copyMismatches: comparison.mismatches,
        trackMismatches: track ? track.shadowMismatches + track.mirrorMismatches : 0,
      },
      now() - startedAt,
    );
  }

  /** Publish iteration k to the guest (the value its stores write) and let every writer run. */
  private resumeWriters(k: number): void {
    this.oracle.beginIteration(k);
    this.track?.beginIteration(k);
    Atomics.store(this.fleet.globals.i32, GuestGlobalsLayout.words.ITERATION, k);
    this.control.resumeAll();
  }

  /** One collection: every page safe to read goes to the oracle and the copier. */
  collect(final: boolean, ringFull?: readonly number[]): void {
    this.copier.beginRound();
    this.collector.collect(this.sink, final, ringFull);
    // Page-track notifications too: a vCPU stalled on a full notification ring waits for this.
    this.track?.drain();
    this.collections++;
  }

  /**
   * The end of an iteration: park every writer, collect once more, verify. Under the
   * no-final-stop mutant the "final" sync and the checks run while the writers still run,
   * and they are parked only afterwards.
   */
  private async finalSync(excluded: ReadonlySet<number>): Promise<{ verdict: IterationVerdict; comparison: CopyComparison }> {
    if (this.faults.noFinalStop) {
      const result = this.collectAndVerify(excluded);
      await this.parkWriters();
      return result;
    }
    await this.parkWriters();
    return this.collectAndVerify(excluded);
  }

  private async parkWriters(): Promise<void> {
    this.control.pauseAll();
    await this.control.waitAllParked(CONTROL_TIMEOUT_MS);
  }

  private collectAndVerify(excluded: ReadonlySet<number>): { verdict: IterationVerdict; comparison: CopyComparison } {
    this.collect(true);
    this.oracle.setPending(pendingStores(this.vm, this.config.vcpus));
    const verdict = this.oracle.verify();
    const comparison = this.copier.compare(excluded);
    return { verdict, comparison };
  }

  guestWrites(): number {
    return this.fleet.sumVcpu('INSTRUCTIONS');
  }

  private counters(): RunCounters {
    return {
      guestWrites: this.guestWrites(),
      deviceWrites: this.fleet.sumDevice('WRITES'),
      records: this.collector.stats.records,
      ringFullExits: this.fleet.sumVcpu('RING_FULL_EXITS'),
      collections: this.collections,
      pagesCopied: this.copier.pagesCopied,
      pagesResent: this.copier.pagesResent,
    };
  }

  /** Everything the run collected, for its summary (read once the threads have ended). */
  statistics(): Omit<RunStatistics, 'config' | 'iterations' | 'error' | 'elapsedMs'> {
    const { copier } = this;
    return {
      vm: this.vm.stats(),
      vcpus: this.vcpuTotals(),
      devices: this.deviceTotals(),
      collector: this.collector.stats,
      copier: { pagesCopied: copier.pagesCopied, pagesResent: copier.pagesResent, duplicates: copier.duplicates },
      findings: this.findings,
      pageTrack: this.track?.summary() ?? null,
    };
  }

  private vcpuTotals(): VcpuTotals {
    const f = this.fleet;
    return {
      instructions: f.sumVcpu('INSTRUCTIONS'),
      stores: f.sumVcpu('STORES'),
      faults: f.sumVcpu('FAULTS'),
      spuriousFaults: f.sumVcpu('SPURIOUS_FAULTS'),
      pushes: f.sumVcpu('PUSHES'),
      ringFullExits: f.sumVcpu('RING_FULL_EXITS'),
      stallNs: f.sumVcpu('STALL_NS'),
      maxStallNs: f.maxVcpu('STALL_MAX_NS'),
    };
  }

  private deviceTotals(): DeviceTotals {
    return { writes: this.fleet.sumDevice('WRITES'), lost: this.fleet.sumDevice('LOST') };
  }
}
