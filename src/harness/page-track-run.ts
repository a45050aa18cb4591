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
import { PAGE_SIZE, PAGE_WORDS } from '../abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, GuestPageWords } from '../guest/guest-memory.js';
import { TrackRingEntryKind } from '../pagetrack/notification-ring-layout.js';
import { Prng, deriveSeed } from '../base/prng.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import { type TrackNotification, TrackRingReader, TrackRingSet } from '../pagetrack/notification-ring.js';
import { ProbeNotifier } from '../pagetrack/probe-notifier.js';
import { ShadowPageTable } from '../pagetrack/shadow-page-table.js';
import { PageTrackControl } from '../userspace/page-track-control.js';
import type { VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';

/** Stream number for choosing the tracked pages from the run seed. */
const TRACK_STREAM = 0x7ac3;
/** Busy time of each probe callback on a tracked write: unregister sometimes has to wait for one. */
const PROBE_HOLD_US = 50;
/** Fractions of the iteration at which the run part acts. */
const AT_REGISTER = 0.2;
const AT_ROTATE = 0.4;
const AT_UNREGISTER = 0.6;
const MAX_DETAILS = 10;

export interface PageTrackSummary {
  ok: boolean;
  /** Pages shadowed (write-tracked) at any time, and the candidates they rotate through. */
  trackPages: number;
  candidates: number;
  /** At the end: gfns with a non-zero count, the sum of all counts, the largest count. */
  trackedGfns: number;
  trackCountTotal: number;
  maxTrackCount: number;
  adds: number;
  removes: number;
  overflowWarnings: number;
  underflowWarnings: number;
  /** Emulated writes to write-tracked pages (kernel count). */
  trackedWrites: number;
  /** Write notifications userspace received from the notification rings. */
  notifications: number;
  /** Emulated writes handed to the notifier list, and individual callbacks made. */
  notifiedWrites: number;
  notifierCalls: number;
  notificationsLost: number;
  notificationOrderErrors: number;
  mirrorMismatches: number;
  trackRingFullExits: number;
  trackRingHardFullWaits: number;
  shadowSyncs: number;
  shadowRefetchDiffered: number;
  /** Notifications for candidate pages the shadow did not hold at that moment (rotated out). */
  shadowIgnoredWrites: number;
  shadowMismatches: number;
  rotations: number;
  probeRegistrations: number;
  probeDeliveries: number;
  gracePeriods: number;
  gracePeriodsWaited: number;
  graceWaitMaxMs: number;
  graceViolations: number;
  details: string[];
}

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
  private readonly probe: ProbeNotifier;
  private readonly candidateIndex = new Map<number, number>();
  /** Per candidate: the page header at the last parked check (or when shadowing began). */
  private readonly baseline: Uint32Array;
  /** Per candidate and vCPU: the header of the last write notification received. */
  private readonly lastHeader: Uint32Array;
  private readonly hasHeader: Uint8Array;
  /** Per candidate: the iteration in which shadowing began (its mirror is judged after). */
  private readonly shadowedIn: Int32Array;
  private readonly vcpus: number;
  private rotateCursor = 0;
  private iteration = 0;
  private stage = 0;
  private task: Promise<void> | null = null;
  private taskError: unknown = null;
  private probeId = -1;
  /** Probe deliveries when its last unregister returned, or -1. */
  private probeDeliveredAtUnregister = -1;
  private readonly stats = {
    mirrorMismatches: 0,
    shadowMismatches: 0,
    lostMax: 0,
    rotations: 0,
    probeRegistrations: 0,
    graceViolations: 0,
  };
  private readonly details: string[] = [];
  private readonly onNotification = (n: TrackNotification): void => this.mirror(n);

  private constructor(
    private readonly options: PageTrackRunOptions,
    ringBuffer: SharedArrayBuffer,
    shadowBuffer: SharedArrayBuffer,
    private readonly spares: number,
  ) {
    this.vcpus = options.vcpus;
    this.control = new PageTrackControl(options.vm, options.workers, options.timeoutMs);
    this.reader = new TrackRingReader(ringBuffer);
    this.shadow = new ShadowPageTable(shadowBuffer, options.vm);
    this.probe = new ProbeNotifier(ProbeNotifier.allocate({ holdUs: PROBE_HOLD_US }));
    const n = this.shadow.pageCount;
    for (let i = 0; i < n; i++) this.candidateIndex.set(this.shadow.gfn(i), i);
    this.baseline = new Uint32Array(n * GUEST_PAGE_HEADER_WORDS);
    this.lastHeader = new Uint32Array(n * this.vcpus * GUEST_PAGE_HEADER_WORDS);
    this.hasHeader = new Uint8Array(n * this.vcpus);
    this.shadowedIn = new Int32Array(n);
  }

  /** Register the ring and shadow notifiers in every thread and shadow the first pages. */
  static async start(options: PageTrackRunOptions): Promise<PageTrackRun> {
    const total = options.slots.reduce((n, s) => n + s.pageCount, 0);
    const rotation = Math.max(1, Math.floor(options.trackPages / 8));
    const spares = Math.min(rotation, total - options.trackPages);
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
    this.stage = 0;
  }

  /** Advance the iteration's work at `fraction` of its interval; never blocks. */
  step(fraction: number): void {
    this.rethrow();
    if (this.task !== null) return;
    if (this.stage === 0 && fraction >= AT_REGISTER) {
      this.stage = 1;
      this.run(this.registerProbe());
    } else if (this.stage === 1 && fraction >= AT_ROTATE) {
      this.stage = 2;
      this.rotate();
    } else if (this.stage === 2 && fraction >= AT_UNREGISTER) {
      this.stage = 3;
      this.run(this.unregisterProbe());
    } else if (this.stage === 3) {
      this.stage = 4;
    }
  }

  /** An asynchronous (un)registration is in progress. */
  get busy(): boolean {
    return this.task !== null;
  }

  /** Whether this iteration's work is done (the run loop may stop the vCPUs). */
  get iterationDone(): boolean {
    return this.stage === 4 && this.task === null;
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

  private async registerProbe(): Promise<void> {
    this.checkProbeQuiet();
    const { id } = await this.control.register(this.probe.spec());
    this.probeId = id;
    this.probeDeliveredAtUnregister = -1;
    this.stats.probeRegistrations++;
  }

  private async unregisterProbe(): Promise<void> {
    const id = this.probeId;
    this.probeId = -1;
    await this.control.unregister(id);
    // When unregister returns no callback may be running, and none may start afterwards.
    const inFlight = this.probe.inFlight;
    this.probeDeliveredAtUnregister = this.probe.delivered;
    if (inFlight !== 0) this.violation(`iteration ${this.iteration}: unregister returned with ${inFlight} probe callback(s) in flight`);
  }

  private checkProbeQuiet(): void {
    if (this.probeDeliveredAtUnregister < 0) return;
    const now = this.probe.delivered;
    if (now !== this.probeDeliveredAtUnregister) {
      this.violation(
        `iteration ${this.iteration}: ${now - this.probeDeliveredAtUnregister} probe notification(s) delivered after unregister returned`,
      );
      this.probeDeliveredAtUnregister = now;
    }
  }

  private violation(text: string): void {
    this.stats.graceViolations++;
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
    this.shadowedIn[i] = this.iteration;
    this.hasHeader.fill(0, i * this.vcpus, (i + 1) * this.vcpus);
    this.snapshotHeader(i);
  }

  /** Userspace's copy of the notifications: the last header each vCPU wrote to each page. */
  private mirror(n: TrackNotification): void {
    if (n.kind !== TrackRingEntryKind.WRITE || n.addr % PAGE_SIZE !== 0 || n.length !== GUEST_PAGE_HEADER_WORDS * 4) return;
    const i = this.candidateIndex.get(n.addr / PAGE_SIZE);
    if (i === undefined || n.vcpu < 0 || n.vcpu >= this.vcpus) return;
    const at = (i * this.vcpus + n.vcpu) * GUEST_PAGE_HEADER_WORDS;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) this.lastHeader[at + w] = n.data[w]!;
    this.hasHeader[i * this.vcpus + n.vcpu] = 1;
  }

  // ------------------------------------------------------------------------------------------
  // After the vCPUs are parked (and the final collection drained the rings)

  verifyIteration(): { shadowMismatches: number; mirrorMismatches: number; lost: number } {
    this.rethrow();
    this.checkProbeQuiet();
    const k = this.iteration;
    const shadowBad = this.shadow.verify();
    for (const m of shadowBad) {
      if (this.details.length < MAX_DETAILS) {
        this.details.push(`iteration ${k}: shadow of gfn 0x${m.gfn.toString(16)} differs from the guest page at byte ${m.offset}`);
      }
    }
    this.stats.shadowMismatches += shadowBad.length;
    const lost = this.reader.lost();
    if (lost > this.stats.lostMax) {
      this.stats.lostMax = lost;
      if (this.details.length < MAX_DETAILS) this.details.push(`iteration ${k}: ${lost} notification(s) made but never received`);
    }
    let mirrorBad = 0;
    for (let i = 0; i < this.shadow.pageCount; i++) {
      if (!this.shadow.isShadowed(i)) continue;
      if (this.shadowedIn[i]! < k && !this.mirrorAgrees(i)) {
        mirrorBad++;
        if (this.details.length < MAX_DETAILS) {
          this.details.push(`iteration ${k}: the last store to gfn 0x${this.shadow.gfn(i).toString(16)} never reached userspace`);
        }
      }
      this.snapshotHeader(i); // exact now: every writer is parked
    }
    this.stats.mirrorMismatches += mirrorBad;
    return { shadowMismatches: shadowBad.length, mirrorMismatches: mirrorBad, lost };
  }

  private mirrorAgrees(i: number): boolean {
    const page = this.pageWords(i);
    if (page === null) return true;
    const { mem, base } = page;
    let changed = false;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) if (mem[base + w] !== this.baseline[i * GUEST_PAGE_HEADER_WORDS + w]) changed = true;
    if (!changed) return true;
    const writer = mem[base + GuestPageWords.WRITER_VCPU]!;
    if (writer >= this.vcpus || this.hasHeader[i * this.vcpus + writer] !== 1) return false;
    const at = (i * this.vcpus + writer) * GUEST_PAGE_HEADER_WORDS;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) if (mem[base + w] !== this.lastHeader[at + w]) return false;
    return true;
  }

  private snapshotHeader(i: number): void {
    const page = this.pageWords(i);
    if (page === null) return;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) this.baseline[i * GUEST_PAGE_HEADER_WORDS + w] = page.mem[page.base + w]!;
  }

  private pageWords(i: number): { mem: Uint32Array; base: number } | null {
    const gfn = this.shadow.gfn(i);
    const slot = this.options.slots.find((s) => gfn >= s.baseGfn && gfn - s.baseGfn < s.pageCount);
    return slot ? { mem: slot.mem32, base: (gfn - slot.baseGfn) * PAGE_WORDS } : null;
  }

  // ------------------------------------------------------------------------------------------

  summary(): PageTrackSummary {
    const pt = this.options.vm.pageTrack;
    const st = pt.stats();
    const sh = this.shadow.stats();
    const rs = this.reader.ringStats();
    let trackCountTotal = 0;
    let maxTrackCount = 0;
    for (let i = 0; i < this.shadow.pageCount; i++) {
      const c = pt.count(this.shadow.gfn(i));
      trackCountTotal += c;
      maxTrackCount = Math.max(maxTrackCount, c);
    }
    const s: PageTrackSummary = {
      ok: false,
      trackPages: this.options.trackPages,
      candidates: this.shadow.pageCount,
      trackedGfns: st.trackedGfns,
      trackCountTotal,
      maxTrackCount,
      adds: st.adds,
      removes: st.removes,
      overflowWarnings: st.overflowWarnings,
      underflowWarnings: st.underflowWarnings,
      trackedWrites: st.trackedWrites,
      notifications: this.reader.writes,
      notifiedWrites: st.notifiedWrites,
      notifierCalls: st.notifierCalls,
      notificationsLost: this.stats.lostMax,
      notificationOrderErrors: this.reader.orderErrors,
      mirrorMismatches: this.stats.mirrorMismatches,
      trackRingFullExits: rs.softFullRequests,
      trackRingHardFullWaits: rs.hardFullWaits,
      shadowSyncs: sh.syncs,
      shadowRefetchDiffered: sh.refetchDiffered,
      shadowIgnoredWrites: sh.ignoredWrites,
      shadowMismatches: this.stats.shadowMismatches,
      rotations: this.stats.rotations,
      probeRegistrations: this.stats.probeRegistrations,
      probeDeliveries: this.probe.delivered,
      gracePeriods: st.gracePeriods,
      gracePeriodsWaited: st.gracePeriodsWaited,
      graceWaitMaxMs: Math.round(st.graceWaitMaxMs * 1000) / 1000,
      graceViolations: this.stats.graceViolations,
      details: this.details.slice(),
    };
    s.ok =
      s.shadowMismatches === 0 &&
      s.notificationsLost === 0 &&
      s.notificationOrderErrors === 0 &&
      s.mirrorMismatches === 0 &&
      s.graceViolations === 0 &&
      s.overflowWarnings === 0 &&
      s.underflowWarnings === 0 &&
      s.trackedWrites === s.notifications;
    return s;
  }
}
