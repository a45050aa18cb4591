/**
 * Page write-tracking with the vCPU worker source running as module Web Workers in headless
 * Chromium: notifier instances built in the workers, userspace on the page's main thread.
 */
import { describe, expect, it } from 'vitest';
import { browserSuite, chromiumMissing } from './browser-env.js';

if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);

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

describe.skipIf(chromiumMissing !== null)('page write-tracking in headless Chromium', () => {
  const suite = browserSuite();

  it('keeps the shadow page table in sync and delivers every notification to the page', async () => {
    const seed = 11;
    const { outcome: result, logs } = await suite.open<TrackSummary>(
      `/test/browser/pages/track-run.html?vcpus=2&trackPages=32&iterations=4&seed=${seed}`,
      '__dirtyringTrack',
    );
    const context = `seed ${seed}; page log:\n${logs.join('\n')}\nresult: ${JSON.stringify(result)}`;
    expect(result.isolated, context).toBe(true);
    expect(result.error, context).toBeUndefined();
    const s = result.summary!;
    expect(s.error, context).toBeNull();
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
