/**
 * The page write-tracking options of a run (`--track-pages N|P%`, `--track-ring-entries N`) and
 * their validation. Returns a problem rather than throwing, so that run-config.ts turns it into
 * its ConfigError (naming the parameter and the errno) without an import cycle.
 */
import type { ErrnoName } from '../abi/errno.js';
import { isKvmError } from '../abi/errno.js';
import { TRACK_RING_DEFAULT_ENTRIES, validateTrackRingEntries } from '../pagetrack/notification-ring.js';

export interface TrackOptions {
  /** Guest pages the run write-tracks (shadowed page-table pages); 0 = no page tracking. */
  readonly trackPages: number;
  /** The same as a share of guest memory, in percent (0 = not given). Resolved into trackPages. */
  readonly trackPercent: number;
  /** Entries per notification ring (userspace's copy of the notifications). */
  readonly trackRingEntries: number;
}

export const TRACK_DEFAULTS: TrackOptions = { trackPages: 0, trackPercent: 0, trackRingEntries: TRACK_RING_DEFAULT_ENTRIES };

export interface TrackConfigProblem {
  readonly param: string;
  readonly value: unknown;
  readonly errno: ErrnoName;
  readonly reason: string;
}

export type TrackConfigResult = { readonly options: TrackOptions } | { readonly problem: TrackConfigProblem };

/**
 * Validate the tracking options given in `input` against a guest of `totalPages` pages.
 * `deviceWriters`: DMA writes (kvm_write_guest) are not emulated and never reach page-track
 * notifiers — in KVM too — so the shadow could not follow them; the two are refused together.
 */
export function resolveTrackOptions(
  input: { readonly trackPages?: unknown; readonly trackPercent?: unknown; readonly trackRingEntries?: unknown },
  totalPages: number,
  deviceWriters: number,
): TrackConfigResult {
  const problem = (param: string, value: unknown, reason: string, errno: ErrnoName = 'EINVAL'): TrackConfigResult => ({
    problem: { param, value, errno, reason },
  });
  const pages = input.trackPages ?? 0;
  const percent = input.trackPercent ?? 0;
  if (typeof pages !== 'number' || !Number.isInteger(pages) || pages < 0 || pages > totalPages) {
    return problem('--track-pages', pages, `tracked pages must be an integer between 0 and ${totalPages} (the guest's pages)`);
  }
  if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
    return problem('--track-pages', `${String(percent)}%`, 'a share of guest pages must be between 0% and 100%');
  }
  if (pages > 0 && percent > 0) {
    return problem('--track-pages', `${pages} and ${percent}%`, 'give a page count or a percentage, not both');
  }
  const trackPages = percent > 0 ? Math.min(totalPages, Math.max(1, Math.round((totalPages * percent) / 100))) : pages;
  const entries = input.trackRingEntries ?? TRACK_DEFAULTS.trackRingEntries;
  if (input.trackRingEntries !== undefined && trackPages === 0) {
    return problem('--track-ring-entries', entries, 'a notification ring size needs --track-pages');
  }
  if (typeof entries !== 'number') return problem('--track-ring-entries', entries, 'expected a number of entries');
  try {
    validateTrackRingEntries(entries);
  } catch (e) {
    if (!isKvmError(e)) throw e;
    return problem('--track-ring-entries', entries, e.detail, e.errno);
  }
  if (trackPages > 0 && deviceWriters > 0) {
    return problem(
      '--track-pages',
      trackPages,
      'cannot be combined with --device-writers: DMA writes are not emulated, so no page-track notifier ever sees them',
    );
  }
  return { options: { trackPages, trackPercent: percent, trackRingEntries: entries } };
}
