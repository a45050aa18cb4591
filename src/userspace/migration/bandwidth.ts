/**
 * The link between source and destination: a token bucket of bytes refilled at the configured
 * bandwidth. The migration loop sends only what the bucket allows and waits otherwise, so a
 * round takes as long as its bytes need on that link and convergence is a real question.
 * The bucket holds at most `burstMs` worth of bytes: time spent doing something else (a
 * harvest, a sync) is not banked as a later burst beyond that.
 */
import { now } from '../../base/clock.js';
import { MS_PER_S } from '../../base/units.js';

export class BandwidthPacer {
  private tokens = 0;
  private last: number;
  private readonly bytesPerMs: number;
  private readonly capacity: number;

  constructor(
    readonly bytesPerSecond: number,
    burstMs = 5,
    /** Smallest burst allowed, in bytes (so one page can always pass). */
    minBurstBytes = 0,
  ) {
    this.bytesPerMs = bytesPerSecond / MS_PER_S;
    this.capacity = Math.max(minBurstBytes, this.bytesPerMs * burstMs);
    this.last = now();
  }

  private refill(): void {
    const t = now();
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.bytesPerMs);
    this.last = t;
  }

  /** Whole units of `unitBytes` that may be sent now. */
  available(unitBytes: number): number {
    this.refill();
    return this.tokens >= unitBytes ? Math.floor(this.tokens / unitBytes) : 0;
  }

  consume(bytes: number): void {
    this.tokens -= bytes;
  }

  /** ms until `bytes` may be sent. */
  waitMs(bytes: number): number {
    this.refill();
    return this.tokens >= bytes ? 0 : (bytes - this.tokens) / this.bytesPerMs;
  }

  /** Seconds `bytes` take on this link. */
  secondsFor(bytes: number): number {
    return bytes / this.bytesPerSecond;
  }
}
