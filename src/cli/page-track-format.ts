/** The CLI side of page write-tracking: `--track-pages N|P%` and the summary rows. */
import type { PageTrackSummary } from '../harness/page-track-run.js';
import { ConfigError } from '../base/config-error.js';
import { formatCount } from './format.js';

export const TRACK_USAGE = `  --track-pages N|P%      write-track N guest pages (or P% of them) as guest page
                          tables: stores to them are emulated and notified, a shadow
                          page table follows them, userspace gets every notification
  --track-ring-entries N  entries per vCPU notification ring, a power of two,
                          512..65536 (default 4096)`;

/** `--track-pages` as a page count or a percentage. */
export function parseTrackPages(text: string | undefined): { trackPages?: number; trackPercent?: number } {
  if (text === undefined) return {};
  const t = text.trim();
  if (/^\d+$/.test(t)) return { trackPages: Number(t) };
  const m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) return { trackPercent: Number(m[1]) };
  throw new ConfigError('--track-pages', text, 'EINVAL', 'expected a page count or a percentage like 1%');
}

export function pageTrackRows(t: PageTrackSummary | null): [string, string][] {
  if (t === null) return [];
  return [
    ['tracked pages (candidates) / gfns tracked at end', `${t.trackPages} (${t.candidates}) / ${t.trackedGfns}`],
    ['track adds / removes (rotations)', `${formatCount(t.adds)} / ${formatCount(t.removes)} (${t.rotations})`],
    ['tracked writes / notifications received', `${formatCount(t.trackedWrites)} / ${formatCount(t.notifications)}`],
    ['notifications lost / out of order', `${t.notificationsLost} / ${t.notificationOrderErrors}`],
    ['shadow syncs (re-fetch differed) / mismatches', `${formatCount(t.shadowSyncs)} (${formatCount(t.shadowRefetchDiffered)}) / ${t.shadowMismatches}`],
    ['notification mirror mismatches', String(t.mirrorMismatches)],
    ['notification-ring full exits', formatCount(t.trackRingFullExits)],
    ['grace periods (waited) / max wait / violations', `${t.gracePeriods} (${t.gracePeriodsWaited}) / ${t.graceWaitMaxMs.toFixed(2)} ms / ${t.graceViolations}`],
  ];
}

/** Lines explaining a page-tracking failure. */
export function pageTrackProblems(t: PageTrackSummary | null): string[] {
  if (t === null || t.ok) return [];
  const lines = t.details.map((d) => `PAGE TRACK: ${d}`);
  if (t.trackedWrites !== t.notifications) {
    lines.push(`PAGE TRACK: ${t.trackedWrites} tracked writes but ${t.notifications} notifications received`);
  }
  if (t.overflowWarnings + t.underflowWarnings > 0) {
    lines.push(`PAGE TRACK: ${t.overflowWarnings} count overflow and ${t.underflowWarnings} underflow warnings`);
  }
  return lines;
}
