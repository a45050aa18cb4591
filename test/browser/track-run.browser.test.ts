/**
 * Page write-tracking with the vCPU worker source running as module Web Workers in headless
 * Chromium: notifier instances built in the workers, userspace on the page's main thread.
 */
import { expect, it } from 'vitest';
import { describeInBrowser } from './browser-env.js';

interface TrackSummary {
  ok: boolean;
  lostPages: number;
  iterations: number;
  error: string | null;
  pageTrack: {
    ok: boolean;
    trackedWrites: number;
    notifications: number;
    shadowMismatches: number;
    mirrorMismatches: number;
    probeRegistrations: number;
    gracePeriods: number;
    graceViolations: number;
  } | null;
}

describeInBrowser('page write-tracking in headless Chromium', (pages) => {
  it('keeps the shadow page table in sync and delivers every notification to the page', async () => {
    const { summary: s, context } = await pages.run<TrackSummary>('track-run', { vcpus: 2, trackPages: 32, iterations: 4, seed: 11 });
    expect(s.iterations, context).toBe(4);
    expect(s.lostPages, context).toBe(0);
    const t = s.pageTrack!;
    expect(t.trackedWrites, context).toBeGreaterThan(0);
    expect(t.notifications, context).toBe(t.trackedWrites);
    expect(t.shadowMismatches + t.mirrorMismatches + t.graceViolations, context).toBe(0);
    expect(t.probeRegistrations, context).toBe(4);
    expect(t.gracePeriods, context).toBe(4);
    expect(s.ok, context).toBe(true);
  });
});
