/**
 * Dirty-limit, as QEMU does it (system/dirtylimit.c): each vCPU gets a quota in MiB/s; every
 * period (1000 ms in QEMU) its dirty rate is measured from its dirty ring, and the time it
 * sleeps after each ring-full exit (`throttle_us_per_full`) is adjusted:
 *
 *  - ring_full_us = ring MiB × 10^6 / the highest rate seen so far (one maximum for the whole
 *    VM): how long filling a ring takes at the fastest rate observed;
 *  - rate within DIRTYLIMIT_TOLERANCE_MIBS of the quota: no change;
 *  - relative error above DIRTYLIMIT_LINEAR_ADJUSTMENT_PCT: change the sleep by
 *    ring_full_us × pct / (100 − pct), pct being the error in percent of the larger value —
 *    for a vCPU above its quota that lands the rate on the quota in one step;
 *  - else nudge it by ring_full_us / 10;
 *  - clamp to [0, DIRTYLIMIT_THROTTLE_PCT_MAX × ring_full_us]; a vCPU that dirtied nothing
 *    (and is not within the tolerance) is not throttled at all.
 *
 * QEMU works in whole MB/s (integers); the emulator keeps fractions, because at its scale a
 * throttled vCPU's rate is often below 1 MiB/s and would read as 0 (which drops the throttle).
 *
 * Migration starts the limit the way QEMU's throttle trigger does: when in two consecutive
 * syncs the guest dirtied more than `triggerPercent` % of what was sent meanwhile.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { SharedBlock } from '../../abi/layout.js';
import { MS_PER_S, MiB, NS_PER_MS, US_PER_S } from '../../base/units.js';
import { VcpuThrottleLayout, type VcpuThrottleBlock } from './migration-layout.js';
import type { Vm } from '../../kernel/vm.js';

export const DIRTYLIMIT_TOLERANCE_MIBS = 25;
export const DIRTYLIMIT_LINEAR_ADJUSTMENT_PCT = 50;
export const DIRTYLIMIT_THROTTLE_PCT_MAX = 99;
/** QEMU's throttle-trigger-threshold default, and how many syncs in a row must exceed it. */
export const THROTTLE_TRIGGER_PERCENT = 50;
export const THROTTLE_TRIGGER_SYNCS = 2;

/**
 * One adjustment of one vCPU's sleep per full ring. `ringFullUs` is the current ring-fill time
 * at the highest rate seen. Returns the new sleep, in µs.
 */
export function adjustThrottleUs(throttleUs: number, quotaMiBs: number, currentMiBs: number, ringFullUs: number): number {
  const lo = Math.min(quotaMiBs, currentMiBs);
  const hi = Math.max(quotaMiBs, currentMiBs);
  // dirtylimit_adjust_throttle: close enough → leave it (this test comes first, so a vCPU that
  // slept through the whole period, rate 0, keeps its throttle under a small quota).
  if (hi - lo <= DIRTYLIMIT_TOLERANCE_MIBS) return throttleUs;
  if (currentMiBs <= 0) return 0;
  let t = throttleUs;
  if (((hi - lo) * PERCENT) / hi > DIRTYLIMIT_LINEAR_ADJUSTMENT_PCT) {
    const pct = Math.min(DIRTYLIMIT_THROTTLE_PCT_MAX, Math.floor(((hi - lo) * PERCENT) / hi));
    const step = (ringFullUs * pct) / (PERCENT - pct);
    t += quotaMiBs < currentMiBs ? step : -step;
  } else {
    t += quotaMiBs < currentMiBs ? ringFullUs / NUDGE_DIVISOR : -ringFullUs / NUDGE_DIVISOR;
  }
  return Math.max(0, Math.min(t, ringFullUs * DIRTYLIMIT_THROTTLE_PCT_MAX));
}

export interface DirtyLimitStats {
  /** When the limit was switched on (ms after the migration started); null while it is off. */
  startedAtMs: number | null;
  adjustments: number;
  /** Latest measured rate per vCPU (MiB/s) and sleep per full ring (µs). */
  ratesMiBs: number[];
  throttleUs: number[];
  /** The first adjustments: when (ms after the start), the rates measured, the sleeps set. */
  history: { atMs: number; ratesMiBs: number[]; throttleUs: number[] }[];
}

/** Adjustments kept in the history (the first ones: how the limit settled). */
const MAX_HISTORY = 32;
/** History rates keep two decimals (a throttled vCPU's rate is often below 1 MiB/s). */
const HISTORY_RATE_SCALE = 100;
/** QEMU's nudge for a small error: a tenth of the ring-fill time. */
const NUDGE_DIVISOR = 10;
const PERCENT = 100;

export class DirtyLimitController {
  readonly blocks: VcpuThrottleBlock[];
  private readonly lastIndex: Uint32Array;
  private lastAt = 0;
  private startedAt = 0;
  private maxRateMiBs = 0;
  private highSyncs = 0;
  readonly stats: DirtyLimitStats;
  private readonly ringMiB: number;

  constructor(
    private readonly vm: Vm,
    readonly vcpuCount: number,
    readonly quotaMiBs: number,
    readonly periodMs: number,
    private readonly triggerPercent = THROTTLE_TRIGGER_PERCENT,
  ) {
    this.blocks = Array.from({ length: vcpuCount }, () => new SharedBlock(VcpuThrottleLayout));
    this.lastIndex = new Uint32Array(vcpuCount);
    // A full ring stands for ring-entries pages dirtied (QEMU: page size × ring size >> 20).
    this.ringMiB = (vm.ringEntries * PAGE_SIZE) / MiB;
    this.stats = {
      startedAtMs: null,
      adjustments: 0,
      ratesMiBs: new Array<number>(vcpuCount).fill(0),
      throttleUs: new Array<number>(vcpuCount).fill(0),
      history: [],
    };
  }

  /** Whether the limit has been switched on. */
  get active(): boolean {
    return this.stats.startedAtMs !== null;
  }

  buffer(i: number): SharedArrayBuffer {
    return this.blocks[i]!.buffer;
  }

  /**
   * At each migration sync: the guest dirtied `bytesDirtied` while `bytesSent` went out. Two
   * syncs in a row above the trigger switch the limit on. Returns whether it is on.
   */
  considerTrigger(bytesDirtied: number, bytesSent: number, at: number, sinceStartMs: number): boolean {
    if (this.active) return true;
    if (bytesDirtied > (bytesSent * this.triggerPercent) / PERCENT) this.highSyncs++;
    else this.highSyncs = 0;
    if (this.highSyncs >= THROTTLE_TRIGGER_SYNCS) this.start(at, sinceStartMs);
    return this.active;
  }

  /** Switch the limit on now (the rate measurement starts; the first adjustment is a period later). */
  start(at: number, sinceStartMs: number): void {
    if (this.active) return;
    this.stats.startedAtMs = sinceStartMs;
    this.lastAt = at;
    this.startedAt = at - sinceStartMs;
    for (let i = 0; i < this.vcpuCount; i++) this.lastIndex[i] = this.vm.ring(i)!.dirtyIndexShared;
  }

  /**
   * Called often from the migration loop: once a period has passed, measure each vCPU's rate
   * from its ring (entries pushed in the period, a page each) and adjust its sleep.
   */
  tick(at: number): void {
    if (!this.active || at - this.lastAt < this.periodMs) return;
    const seconds = (at - this.lastAt) / MS_PER_S;
    this.lastAt = at;
    const rates = this.stats.ratesMiBs;
    for (let i = 0; i < this.vcpuCount; i++) {
      const idx = this.vm.ring(i)!.dirtyIndexShared;
      const pushed = (idx - this.lastIndex[i]!) >>> 0;
      this.lastIndex[i] = idx;
      rates[i] = (pushed * PAGE_SIZE) / MiB / seconds;
      if (rates[i]! > this.maxRateMiBs) this.maxRateMiBs = rates[i]!;
    }
    for (let i = 0; i < this.vcpuCount; i++) {
      const w = this.blocks[i]!.i32;
      const ringFullUs = this.maxRateMiBs > 0 ? (this.ringMiB * US_PER_S) / this.maxRateMiBs : 0;
      const old = Atomics.load(w, VcpuThrottleLayout.words.THROTTLE_US_PER_FULL);
      const next = Math.round(adjustThrottleUs(old, this.quotaMiBs, rates[i]!, ringFullUs));
      // Int32 µs: at most ~35 minutes, far beyond any clamp reached here.
      Atomics.store(w, VcpuThrottleLayout.words.THROTTLE_US_PER_FULL, Math.min(next, 0x7fffffff));
      this.stats.throttleUs[i] = next;
    }
    this.stats.adjustments++;
    if (this.stats.history.length < MAX_HISTORY) {
      this.stats.history.push({
        atMs: Math.round(at - this.startedAt),
        ratesMiBs: rates.map((r) => Math.round(r * HISTORY_RATE_SCALE) / HISTORY_RATE_SCALE),
        throttleUs: this.stats.throttleUs.slice(),
      });
    }
  }

  /** Total time the vCPUs slept in throttle, in ms, and how many sleeps. */
  sleepTotals(): { ms: number; sleeps: number } {
    let ns = 0;
    let sleeps = 0;
    for (const b of this.blocks) {
      ns += b.f64[VcpuThrottleLayout.floats.THROTTLE_SLEEP_NS]!;
      sleeps += b.f64[VcpuThrottleLayout.floats.THROTTLE_SLEEPS]!;
    }
    return { ms: ns / NS_PER_MS, sleeps };
  }
}
