/**
 * What page write-tracking's part of a run reports (the `pageTrack` object of `--json`), made
 * in one step from the statistics of its parts: the kernel's page-track counters, the shadow
 * page table's, the notification rings' and userspace's checks. Pure.
 */
import type { PageTrackStats } from '../kernel/page-track.js';
import type { ShadowStats } from '../pagetrack/shadow-page-table.js';
import { round3 } from '../userspace/guest-fleet.js';

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

/** What userspace's checks counted over the run (page-track-run.ts). */
export interface PageTrackCheckTotals {
  /** The most notifications ever found missing at a parked check. */
  readonly notificationsLost: number;
  readonly notificationOrderErrors: number;
  readonly mirrorMismatches: number;
  readonly shadowMismatches: number;
  readonly rotations: number;
  readonly probeRegistrations: number;
  readonly probeDeliveries: number;
  readonly graceViolations: number;
  readonly details: readonly string[];
}

export interface PageTrackStatistics {
  readonly trackPages: number;
  readonly candidates: number;
  /** The candidates' tracking counts at the end: their sum and the largest. */
  readonly trackCountTotal: number;
  readonly maxTrackCount: number;
  readonly kernel: PageTrackStats;
  readonly shadow: ShadowStats;
  /** Write notifications received, and the rings' producer-side full counts. */
  readonly notifications: number;
  readonly rings: { readonly softFullRequests: number; readonly hardFullWaits: number };
  readonly checks: PageTrackCheckTotals;
}

/**
 * Page write-tracking's verdict: shadows exact, no notification lost or out of order, the mirror
 * saw every last store, no callback after an unregister returned, no count warning, and every
 * tracked write notified.
 */
export function pageTrackPassed(s: Omit<PageTrackSummary, 'ok'>): boolean {
  return (
    s.shadowMismatches === 0 &&
    s.notificationsLost === 0 &&
    s.notificationOrderErrors === 0 &&
    s.mirrorMismatches === 0 &&
    s.graceViolations === 0 &&
    s.overflowWarnings === 0 &&
    s.underflowWarnings === 0 &&
    s.trackedWrites === s.notifications
  );
}

export function summarizePageTrack(p: PageTrackStatistics): PageTrackSummary {
  const { kernel, shadow, checks } = p;
  const summary: Omit<PageTrackSummary, 'ok'> = {
    trackPages: p.trackPages,
    candidates: p.candidates,
    trackedGfns: kernel.trackedGfns,
    trackCountTotal: p.trackCountTotal,
    maxTrackCount: p.maxTrackCount,
    adds: kernel.adds,
    removes: kernel.removes,
    overflowWarnings: kernel.overflowWarnings,
    underflowWarnings: kernel.underflowWarnings,
    trackedWrites: kernel.trackedWrites,
    notifications: p.notifications,
    notifiedWrites: kernel.notifiedWrites,
    notifierCalls: kernel.notifierCalls,
    notificationsLost: checks.notificationsLost,
    notificationOrderErrors: checks.notificationOrderErrors,
    mirrorMismatches: checks.mirrorMismatches,
    trackRingFullExits: p.rings.softFullRequests,
    trackRingHardFullWaits: p.rings.hardFullWaits,
    shadowSyncs: shadow.syncs,
    shadowRefetchDiffered: shadow.refetchDiffered,
    shadowIgnoredWrites: shadow.ignoredWrites,
    shadowMismatches: checks.shadowMismatches,
    rotations: checks.rotations,
    probeRegistrations: checks.probeRegistrations,
    probeDeliveries: checks.probeDeliveries,
    gracePeriods: kernel.gracePeriods,
    gracePeriodsWaited: kernel.gracePeriodsWaited,
    graceWaitMaxMs: round3(kernel.graceWaitMaxMs),
    graceViolations: checks.graceViolations,
    details: checks.details.slice(),
  };
  // `ok` comes first in the JSON, as it always has.
  return { ok: pageTrackPassed(summary), ...summary };
}
