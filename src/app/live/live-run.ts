/**
 * A live run: the harness's DirtyLogRun driven iteration by iteration, with a gate between
 * iterations (pause, step one iteration, speed) and an auto-pause when the checks find a lost
 * page. It runs in the live run's worker (run.worker.ts), userspace's thread, so that a long
 * verification never holds the page's frames; the vCPUs are module Web Workers built from
 * workers/vcpu.worker.ts. The page reads the VM's shared memory and the telemetry
 * (live-telemetry.ts) on its own; events are sent per iteration, never per ring entry or page.
 */
import { isKvmError } from '../../abi/errno.js';
import { now } from '../../base/clock.js';
import type { LostPage } from '../../checker/oracle.js';
import { DEVICE_WRITER_BASE } from '../../guest/guest-memory.js';
import { DirtyLogRun } from '../../harness/dirty-log-run.js';
import type { IterationReport } from '../../harness/iteration-report.js';
import type { RunConfig } from '../../harness/run-config.js';
import { type RunSummary, summarizeRun } from '../../harness/run-summary.js';
import { sleep } from '../../platform/async-wait.js';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import type { CopyMismatch } from '../../userspace/dirty-copier.js';
import { describeFailure } from '../../userspace/guest-fleet.js';
import { type HarvesterThreadSource, createUserCollector } from '../../harvester/create-user-collector.js';
import { ThreadedHarvesterCollector } from '../../harvester/threaded-collector.js';
import type { HarvesterChoice } from '../harvesters.js';
import { PAGE_SIZE } from '../../abi/constants.js';
import { timeResets, timedCollector } from './activity-log.js';
import { Counter, LiveTelemetry } from './live-telemetry.js';

export type LiveState = 'starting' | 'running' | 'paused' | 'finished' | 'failed' | 'stopped';

export interface LiveEvents {
  /** `iteration`: the one running, or (paused) the one a step runs. */
  onState(state: LiveState, message: string | null, iteration: number): void;
  onIteration(report: IterationReport): void;
  /** The checks found lost pages: the run is paused, `pages` are the first of them. */
  onLost(message: string, pages: readonly PageRef[]): void;
  onSummary(summary: RunSummary): void;
}

/** Pause between iterations at each speed (ms): full speed, then slower for watching. */
export const SPEEDS: readonly { readonly label: string; readonly gapMs: number }[] = [
  { label: 'full', gapMs: 0 },
  { label: '1/2', gapMs: 150 },
  { label: '1/4', gapMs: 500 },
  { label: '1/10', gapMs: 1500 },
];

/** The oracle's finding for a lost page, worded as `dirtyring run` prints it. */
export function describeLost(p: LostPage): string {
  const writer = writerName(p.vcpu);
  return (
    `LOST PAGE: slot ${p.slot} offset ${p.offset} (gfn 0x${p.gfn.toString(16)}), last written by ${writer} ` +
    `with value ${p.value}, iteration ${p.iteration}, seed ${p.seed} (${p.reason})`
  );
}

/** A page by memslot id and offset in it. */
export interface PageRef {
  readonly slot: number;
  readonly offset: number;
}

const writerName = (w: number): string => (w >= DEVICE_WRITER_BASE ? `device ${w - DEVICE_WRITER_BASE}` : `vCPU ${w}`);

/** The copy check's finding, worded as `dirtyring run` prints it. */
export function describeMismatch(m: CopyMismatch, seed: number): string {
  return `COPY MISMATCH: slot ${m.slot} offset ${m.offset} (gfn 0x${m.gfn.toString(16)}): the destination misses a write by ${writerName(m.writer)}, seed ${seed}`;
}

export class LiveRun {
  readonly telemetry: LiveTelemetry;
  readonly run: DirtyLogRun;
  state: LiveState = 'starting';
  iteration = 0;
  speed = 0;
  private paused = false;
  private stepsAllowed = 0;
  private stopRequested = false;
  private wake: (() => void) | null = null;
  private lostSeen = 0;
  private mismatchesSeen = 0;

  /**
   * `threads`: where a harvester with threads of its own finds them (its app URL, the page's
   * harvester-thread workers); null for any other choice, which runs on this thread.
   */
  constructor(
    readonly config: RunConfig,
    harvester: HarvesterChoice,
    private readonly events: LiveEvents,
    threads: HarvesterThreadSource | null = null,
  ) {
    if (harvester.log !== null && harvester.log !== config.log) throw new Error(`harvester ${harvester.id} needs log mode ${harvester.log}, not ${config.log}`);
    const telemetry = LiveTelemetry.allocate(config.memoryBytes / PAGE_SIZE, config.vcpus);
    this.telemetry = telemetry;
    this.run = new DirtyLogRun(config, {
      spawn: spawnBrowserVcpuWorker,
      // A C harvester's rings live in its module's shared memory, which the vCPU workers get with the VM's buffers.
      ...(harvester.ringSpace && { ringSpace: harvester.ringSpace }),
      createCollector: (vm, _vcpus, slots, c) => {
        timeResets(vm, telemetry.activity);
        const inner = threads !== null && harvester.definition ? createUserCollector(harvester.definition(), threads, vm, c.vcpus, slots) : harvester.create(vm, slots, c);
        this.harvesterThreads = inner instanceof ThreadedHarvesterCollector ? (inner.definition.threads ?? 1) : 0;
        const collector = timedCollector(inner, telemetry.activity, () => this.publish());
        this.fetchIndex = collector.fetchIndex ?? null;
        return collector;
      },
    });
  }

  private fetchIndex: ((vcpu: number) => number) | null = null;
  /** The threads of its own the harvester runs on (0: this worker's thread). */
  harvesterThreads = 0;

  /** Whether the harvester tells its fetch index (the built-in collectors do; a user's harvester keeps its own). */
  get hasFetchIndex(): boolean {
    return this.fetchIndex !== null;
  }

  /** Copy what the page draws into the telemetry (after every collection and iteration). */
  private publish(): void {
    const t = this.telemetry;
    // Undefined only inside DirtyLogRun's constructor, before any collection.
    const run = this.run as DirtyLogRun | undefined;
    if (run === undefined) return;
    t.reported.set(run.oracle.reportedPages.subarray(0, t.reported.length));
    if (this.fetchIndex) for (let i = 0; i < t.fetch.length; i++) t.fetch[i] = this.fetchIndex(i);
    t.counters[Counter.RECORDS] = run.collector.stats.records;
    t.counters[Counter.FALSE_POSITIVES] = run.findings.falsePositives;
    t.counters[Counter.ITERATION] = this.iteration;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
    this.stepsAllowed = 0;
  }

  resume(): void {
    this.paused = false;
    this.release();
  }

  /** While paused: run one more iteration, then pause again. */
  step(): void {
    this.paused = true;
    this.stepsAllowed++;
    this.release();
  }

  stop(): void {
    this.stopRequested = true;
    this.release();
  }

  private release(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private setState(state: LiveState, message: string | null = null): void {
    this.state = state;
    this.events.onState(state, message, this.iteration);
  }

  /** Between iterations: wait while paused (unless a step is allowed), then the speed's gap. */
  private async gate(): Promise<void> {
    while (this.paused && this.stepsAllowed === 0 && !this.stopRequested) {
      if (this.state !== 'paused') this.setState('paused');
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.stepsAllowed > 0) this.stepsAllowed--;
    const gap = SPEEDS[this.speed]?.gapMs ?? 0;
    if (gap > 0 && !this.stopRequested) await sleep(gap);
    if (!this.stopRequested && this.state !== 'running') this.setState('running');
  }

  /** Run to the end (or until stopped); resolves with the summary, never rejects. */
  async runToEnd(): Promise<RunSummary> {
    const t0 = now();
    let error: string | null = null;
    let iterations = 0;
    try {
      await this.run.start();
      for (let k = 1; k <= this.config.iterations && !this.stopRequested; k++) {
        // The iteration about to run (the state events name it; paused: the one a step runs).
        this.iteration = k;
        await this.gate();
        if (this.stopRequested) break;
        this.publish();
        const report = await this.run.runIteration(k);
        iterations = k;
        this.publish();
        this.events.onIteration(report);
        if (report.lostPages > 0) this.autoPause();
      }
    } catch (e) {
      error = isKvmError(e) ? e.message : describeFailure(e, this.run.fleet);
    } finally {
      // A harvester's own threads end first (their workers are terminated), then the vCPUs.
      await this.run.collector.close?.();
      const err = await this.run.fleet.shutdown();
      if (err !== null && error === null) error = err;
    }
    const summary = summarizeRun({ config: this.config, iterations, error, elapsedMs: now() - t0, ...this.run.statistics() });
    // As `dirtyring run` says "reproduce with --seed S": the link to the configuration carries it.
    if (error !== null) this.setState('failed', `${error} (seed ${this.config.seed}: the link to this configuration reproduces the run)`);
    else if (this.stopRequested) this.setState('stopped', `stopped after ${iterations} iterations`);
    else this.setState('finished', summary.ok ? 'finished clean: no page lost' : `finished with ${summary.lostPages} lost pages`);
    this.events.onSummary(summary);
    return summary;
  }

  /** Pause on this iteration's lost pages, with the first finding of the oracle (or, failing that, of the copy check). */
  private autoPause(): void {
    const f = this.run.findings;
    const lost = f.lost.slice(this.lostSeen);
    const mismatches = f.mismatches.slice(this.mismatchesSeen);
    this.lostSeen = f.lost.length;
    this.mismatchesSeen = f.mismatches.length;
    const firstLost = lost[0];
    const firstMismatch = mismatches[0];
    const message = firstLost
      ? describeLost(firstLost)
      : firstMismatch
        ? describeMismatch(firstMismatch, this.config.seed)
        : `${f.lostPages} lost pages (details of the first ${f.lost.length + f.mismatches.length} already shown)`;
    this.pause();
    this.events.onLost(message, [...lost, ...mismatches]);
  }
}
