/**
 * Sending the pages marked in the dirty tracker's `toSend` to the destination: one pass sends
 * every marked page once, in page order, in batches the link (BandwidthPacer) and the
 * destination (PageSender.room) allow, servicing the guest between batches. Each page is read
 * only after the tracker allows it (manual protect CLEARs its chunk first), and counted as a
 * resend when its header is the one its previous copy already carried.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { assert } from '../../base/assert.js';
import { now } from '../../base/clock.js';
import { CONTROL_TIMEOUT_MS } from '../guest-fleet.js';
import { PageHeaderHistory } from '../page-copy.js';
import type { BandwidthPacer } from './bandwidth.js';
import type { PageSender } from './destination.js';
import type { DirtyTracker } from './dirty-tracker.js';
import { type GuestService, SERVICE_SLICE_MS } from './guest-service.js';
import type { RoundKind } from './migration-report.js';
import type { SlotPages } from './slot-pages.js';

/** Pages sent between two looks at the guest (stalls, dirty-limit, dead threads). */
const BATCH_PAGES = 64;
/** Progress callbacks during a pass, at most this often unless the caller says otherwise. */
const DEFAULT_PROGRESS_INTERVAL_MS = 100;

export interface PassProgress {
  readonly round: number;
  readonly kind: RoundKind;
  readonly pagesSent: number;
  readonly pagesToSend: number;
}

export interface PumpHooks {
  /** A pass begins with `pagesToSend` pages marked. */
  readonly onRoundStart?: (p: PassProgress) => void;
  /** During a pass, at most every `progressIntervalMs`, and once at its end. */
  readonly onProgress?: (p: PassProgress) => void;
  readonly progressIntervalMs?: number;
  /** Asked between batches of a pre-copy pass: true cancels the migration (Ctrl-C) at once. */
  readonly shouldStop?: () => boolean;
}

export class PagePump {
  private readonly history: PageHeaderHistory;
  /** Where the current pass goes on looking for marked pages. */
  private cursor = 0;
  /** Pages sent since `beginPass`, and how many of them had not changed since their last send. */
  sent = 0;
  resent = 0;

  constructor(
    private readonly pages: SlotPages,
    /** Each memslot's guest memory, as the sender reads it. */
    private readonly sources: readonly Int32Array[],
    private readonly tracker: Pick<DirtyTracker, 'toSend' | 'beforeSend' | 'finishPass'>,
    private readonly sender: PageSender,
    /** Writes the destination at once, bypassing the link (see `sendUnpaced`). */
    private readonly direct: PageSender,
    private readonly pacer: BandwidthPacer,
    private readonly guest: GuestService,
    private readonly hooks: PumpHooks,
  ) {
    assert(sources.length === pages.starts.length - 1, 'one source view per memslot');
    this.history = new PageHeaderHistory(pages.total);
  }

  beginPass(): void {
    this.sent = 0;
    this.resent = 0;
  }

  /**
   * The copy-before-reset mutant sends straight from the harvest, before the reset. Its bug is
   * the order, not the volume: these sends do not wait for (or draw on) the link.
   */
  readonly sendUnpaced = (g: number): void => this.send(g, this.direct);

  /** One pass over `toSend`: every marked page once, at the link's pace. */
  async pass(round: number, kind: RoundKind): Promise<void> {
    const toSend = this.tracker.toSend;
    const progress = { round, kind, pagesSent: 0, pagesToSend: toSend.count() };
    this.hooks.onRoundStart?.({ ...progress });
    const progressEvery = this.hooks.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    let lastProgress = now();
    let lastRoom = lastProgress;
    this.cursor = 0;
    for (;;) {
      // A cancelled migration leaves its pass: the guest stays at the source, nothing is verified.
      if (kind !== 'stop-and-copy' && this.hooks.shouldStop?.() === true) break;
      const allowed = Math.min(this.pacer.available(PAGE_SIZE), this.sender.room(), BATCH_PAGES);
      if (allowed === 0) {
        await this.waitForLink(lastRoom);
        continue;
      }
      lastRoom = now();
      const sent = this.sendBatch(allowed);
      progress.pagesSent += sent;
      this.guest.service();
      const t = now();
      if (this.hooks.onProgress && t - lastProgress >= progressEvery) {
        lastProgress = t;
        this.hooks.onProgress({ ...progress });
      }
      // A short batch found no marked page left.
      if (sent < allowed) break;
    }
    this.tracker.finishPass();
    this.hooks.onProgress?.({ ...progress });
  }

  /** Send up to `allowed` marked pages from the cursor on; returns how many (fewer: none left). */
  private sendBatch(allowed: number): number {
    const toSend = this.tracker.toSend;
    let n = 0;
    let g = -1;
    while (n < allowed && (g = toSend.nextSet(this.cursor)) >= 0) {
      toSend.clear(g);
      this.cursor = g + 1;
      this.send(g, this.sender);
      n++;
    }
    this.pacer.consume(n * PAGE_SIZE);
    return n;
  }

  /** Nothing may be sent now: wait for the destination to make room, or for the link. */
  private async waitForLink(lastRoom: number): Promise<void> {
    if (this.sender.room() === 0) {
      // A destination that stopped applying pages (its thread died) must not hang us.
      if (now() - lastRoom > CONTROL_TIMEOUT_MS) throw new Error(`the destination applied nothing for ${CONTROL_TIMEOUT_MS} ms`);
      this.guest.service();
      await this.sender.waitForRoom(SERVICE_SLICE_MS);
    } else {
      await this.guest.idle(this.pacer.waitMs(PAGE_SIZE));
    }
  }

  private send(g: number, via: PageSender): void {
    const si = this.pages.slotIndexOf(g);
    const page = g - this.pages.starts[si]!;
    this.tracker.beforeSend(si, page);
    via.send(si, page, this.sources[si]!);
    if (this.history.record(g, via.copyWords, via.copyBase)) this.resent++;
    this.sent++;
  }
}
