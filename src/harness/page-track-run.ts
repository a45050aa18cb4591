/**
 * Page write-tracking in a `dirtyring run` (`--track-pages N`): the shadow-page-table example
 * running against real vCPU threads, with userspace following the notifications.
 *
 * Before iteration 1 (vCPUs parked) two notifiers are registered in every thread — the
 * notification rings to userspace and the shadow page table — and the shadow starts shadowing
 * (write-tracking) `trackPages` guest pages chosen from the seed. In every iteration, while the
 * vCPUs run, the run part (driven by the run loop, never blocking it):
 *   1. registers a probe notifier in every worker (a callback that lingers a little);
 *   2. rotates the shadowed set: unshadows some pages and shadows spare ones, and on one page
 *      that stays shadowed adds and removes an extra tracking reference (count 2 → 1);
 *   3. unregisters the probe, checking that no probe callback is in flight when that returns.
 * Notifications are drained at every collection. After the vCPUs are parked:
 *   - the shadow must equal the guest page, byte for byte, for every shadowed page;
 *   - every sequence number taken must have been received (nothing lost), in ring order;
 *   - userspace's mirror: for each page shadowed since before this iteration whose header
 *     changed, the last notification received from the header's writer must carry exactly
 *     that header (the guest's last store to the page reached userspace);
 *   - the probe received nothing after its unregister returned;
 *   - at the end, tracked writes counted by the kernel = write notifications received.
 */
import { assert } from '../base/assert.js';
import { Prng, deriveSeed } from '../base/prng.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import { type TrackNotification, TrackRingReader, TrackRingSet } from '../pagetrack/notification-ring.js';
import { ShadowPageTable } from '../pagetrack/shadow-page-table.js';
import { PageTrackControl } from '../userspace/page-track-control.js';
import type { VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';
import { GracePeriodProbe } from './grace-period-probe.js';
import { NotificationMirror } from './notification-mirror.js';
import { type PageTrackSummary, summarizePageTrack } from './page-track-summary.js';

export type { PageTrackSummary } from './page-track-summary.js';

/** Stream number for choosing the tracked pages from the run seed. */
const TRACK_STREAM = 0x7ac3;
/** Fractions of the iteration at which the run part acts. */
const AT_REGISTER = 0.2;
const AT_ROTATE = 0.4;
const AT_UNREGISTER = 0.6;
/** Spare pages: an eighth of the shadowed ones rotate in and out each iteration (at least one). */
const ROTATION_DIVISOR = 8;
/** Details kept for the summary (the first ones); the counts are always complete. */
const MAX_DETAILS = 10;

/** The run part's progress through an iteration, in order. */
const Stage = { IDLE: 0, REGISTERING: 1, ROTATED: 2, UNREGISTERING: 3, DONE: 4 } as const;
type Stage = (typeof Stage)[keyof typeof Stage];

export interface PageTrackRunOptions {
  readonly vm: Vm;
  readonly slots: readonly Memslot[];
  readonly workers: readonly VcpuWorkerHandle[];
  readonly vcpus: number;
  readonly seed: number;
  readonly trackPages: number;
  readonly trackRingEntries: number;
  readonly timeoutMs: number;
}

/** What a parked check found in one iteration. */
export interface PageTrackVerdict {
  readonly shadowMismatches: number;
  readonly mirrorMismatches: number;
  /** Notifications made but not received so far. */
  readonly lost: number;
}

/** Pick `count` distinct guest pages of `slots` from the seed. */
function choosePages(slots: readonly Memslot[], count: number, seed: number): number[] {
  const all: number[] = [];
  for (const s of slots) for (let p = 0; p < s.pageCount; p++) all.push(s.baseGfn + p);
  const prng = new Prng(deriveSeed(seed, TRACK_STREAM));
  for (let i = 0; i < count; i++) {
    const j = i + prng.below(all.length - i);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

export class PageTrackRun {
  private readonly control: PageTrackControl;
  private readonly reader: TrackRingReader;
  private readonly shadow: ShadowPageTable;
  private readonly mirror: NotificationMirror;
  private readonly probe: GracePeriodProbe;
  private rotateCursor = 0;
  private iteration = 0;
  private stage: Stage = Stage.IDLE;
  private task: Promise<void> | null = null;
  private taskError: unknown = null;
  private readonly stats = {
    mirrorMismatches: 0,
    shadowMismatches: 0,
    lostMax: 0,
    rotations: 0,
    graceViolations: 0,
  };
  private readonly details: string[] = [];
  private readonly onNotification = (n: TrackNotification): void => this.mirror.record(n);

  private constructor(
    private readonly options: PageTrackRunOptions,
    ringBuffer: SharedArrayBuffer,
    shadowBuffer: SharedArrayBuffer,
    private readonly spares: number,
  ) {
    this.control = new PageTrackControl(options.vm, options.workers, options.timeoutMs);
    this.reader = new TrackRingReader(ringBuffer);
    this.shadow = new ShadowPageTable(shadowBuffer, options.vm);
    const gfns = Array.from({ length: this.shadow.pageCount }, (_, i) => this.shadow.gfn(i));
    this.mirror = new NotificationMirror(gfns, options.slots, options.vcpus);
    this.probe = new GracePeriodProbe(this.control, (text) => {
      this.stats.graceViolations++;
      this.detail(text);
    });
  }

  /** Register the ring and shadow notifiers in every thread and shadow the first pages. */
  static async start(options: PageTrackRunOptions): Promise<PageTrackRun> {
    const total = options.slots.reduce((n, s) => n + s.pageCount, 0);
    const rotation = Math.max(1, Math.floor(options.trackPages / ROTATION_DIVISOR));
    const spares = Math.min(rotation, total - options.trackPages);
    assert(spares >= 0, `${options.trackPages} pages to track in a guest of ${total}`);
    const gfns = choosePages(options.slots, options.trackPages + spares, options.seed);
    const run = new PageTrackRun(
      options,
      TrackRingSet.allocate(options.vcpus, options.trackRingEntries),
      ShadowPageTable.allocate(gfns),
      spares,
    );
    await run.control.register(run.reader.set.spec());
    await run.control.register(run.shadow.spec());
    for (let i = 0; i < options.trackPages; i++) run.startShadowing(i);
    return run;
  }

  // ------------------------------------------------------------------------------------------
  // During an iteration

  beginIteration(k: number): void {
    this.iteration = k;
    this.stage = Stage.IDLE;
  }

  /** Advance the iteration's work at `fraction` of its interval; never blocks. */
  step(fraction: number): void {
    this.rethrow();
    if (this.task !== null) return;
    if (this.stage === Stage.IDLE && fraction >= AT_REGISTER) {
      this.stage = Stage.REGISTERING;
      this.run(this.probe.register(this.iteration));
    } else if (this.stage === Stage.REGISTERING && fraction >= AT_ROTATE) {
      this.stage = Stage.ROTATED;
      this.rotate();
    } else if (this.stage === Stage.ROTATED && fraction >= AT_UNREGISTER) {
      this.stage = Stage.UNREGISTERING;
      this.run(this.probe.unregister(this.iteration));
    } else if (this.stage === Stage.UNREGISTERING) {
      this.stage = Stage.DONE;
    }
  }

  /** An asynchronous (un)registration is in progress. */
  get busy(): boolean {
    return this.task !== null;
  }

  /** Whether this iteration's work is done (the run loop may stop the vCPUs). */
  get iterationDone(): boolean {
    return this.stage === Stage.DONE && this.task === null;
  }

  /** Take the notifications userspace has not read yet (at every collection). */
  drain(): void {
    this.reader.drain(this.onNotification);
  }

  private run(task: Promise<void>): void {
    this.task = task.then(
      () => {
        this.task = null;
      },
      (e: unknown) => {
        this.taskError = e;
        this.task = null;
      },
    );
  }

  private rethrow(): void {
    if (this.taskError !== null) {
      const e = this.taskError;
      this.taskError = null;
      throw e;
    }
  }

  private detail(text: string): void {
    if (this.details.length < MAX_DETAILS) this.details.push(text);
  }

  /** Swap some shadowed pages for spare ones, and nest one extra tracking reference. */
  private rotate(): void {
    const shadow = this.shadow;
    const n = shadow.pageCount;
    const count = Math.max(1, this.spares);
    const out: number[] = [];
    for (let scanned = 0; scanned < n && out.length < count; scanned++) {
      const i = (this.rotateCursor + scanned) % n;
      if (shadow.isShadowed(i)) out.push(i);
    }
    if (out.length > 0) this.rotateCursor = (out[out.length - 1]! + 1) % n;
    const spare: number[] = [];
    for (let i = 0; i < n && spare.length < this.spares; i++) if (!shadow.isShadowed(i)) spare.push(i);
    for (const i of out) shadow.unshadow(i);
    // With no spare pages (every page tracked), the same pages come back: remove, then add.
    for (const i of spare.length > 0 ? spare : out) this.startShadowing(i);
    // A second tracker on a page that stays shadowed: its count goes 2 → 1 and it must stay
    // tracked (a remove that cleared WRITE_TRACKED too early would let stores bypass the shadow).
    for (let i = 0; i < n; i++) {
      if (!shadow.isShadowed(i) || out.includes(i) || spare.includes(i)) continue;
      const pt = this.options.vm.pageTrack;
      pt.addGfn(shadow.gfn(i));
      pt.removeGfn(shadow.gfn(i));
      break;
    }
    this.stats.rotations++;
  }

  private startShadowing(i: number): void {
    this.shadow.shadow(i);
    this.mirror.watch(i, this.iteration);
  }

  // ------------------------------------------------------------------------------------------
  // After the vCPUs are parked (and the final collection drained the rings)

  verifyIteration(): PageTrackVerdict {
    this.rethrow();
    const k = this.iteration;
    this.probe.checkQuiet(k);
    const shadowMismatches = this.verifyShadows(k);
    const lost = this.checkNothingLost(k);
    const mirrorMismatches = this.verifyMirror(k);
    return { shadowMismatches, mirrorMismatches, lost };
  }

  /** Every shadowed page's copy equals the guest page, byte for byte. */
  private verifyShadows(k: number): number {
    const bad = this.shadow.verify();
    for (const m of bad) this.detail(`iteration ${k}: shadow of gfn 0x${m.gfn.toString(16)} differs from the guest page at byte ${m.offset}`);
    this.stats.shadowMismatches += bad.length;
    return bad.length;
  }

  /** Every sequence number taken so far was received. */
  private checkNothingLost(k: number): number {
    const lost = this.reader.lost();
    if (lost > this.stats.lostMax) {
      this.stats.lostMax = lost;
      this.detail(`iteration ${k}: ${lost} notification(s) made but never received`);
    }
    return lost;
  }

  /** The last store to each page shadowed since before this iteration reached userspace. */
  private verifyMirror(k: number): number {
    let bad = 0;
    for (let i = 0; i < this.shadow.pageCount; i++) {
      if (!this.shadow.isShadowed(i)) continue;
      if (this.mirror.watchedBefore(i, k) && !this.mirror.agrees(i)) {
        bad++;
        this.detail(`iteration ${k}: the last store to gfn 0x${this.shadow.gfn(i).toString(16)} never reached userspace`);
      }
      this.mirror.snapshot(i); // exact now: every writer is parked
    }
    this.stats.mirrorMismatches += bad;
    return bad;
  }

  // ------------------------------------------------------------------------------------------

  summary(): PageTrackSummary {
    const pt = this.options.vm.pageTrack;
    let trackCountTotal = 0;
    let maxTrackCount = 0;
    for (let i = 0; i < this.shadow.pageCount; i++) {
      const c = pt.count(this.shadow.gfn(i));
      trackCountTotal += c;
      maxTrackCount = Math.max(maxTrackCount, c);
    }
    return summarizePageTrack({
      trackPages: this.options.trackPages,
      candidates: this.shadow.pageCount,
      trackCountTotal,
      maxTrackCount,
      kernel: pt.stats(),
      shadow: this.shadow.stats(),
      notifications: this.reader.writes,
      rings: this.reader.ringStats(),
      checks: {
        notificationsLost: this.stats.lostMax,
        notificationOrderErrors: this.reader.orderErrors,
        mirrorMismatches: this.stats.mirrorMismatches,
        shadowMismatches: this.stats.shadowMismatches,
        rotations: this.stats.rotations,
        probeRegistrations: this.probe.registrations,
        probeDeliveries: this.probe.deliveries,
        graceViolations: this.stats.graceViolations,
        details: this.details,
      },
    });
  }
}
