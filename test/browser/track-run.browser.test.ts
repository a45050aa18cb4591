/**
 * Page write-tracking with the vCPU worker source running as module Web Workers in headless
 * Chromium: notifier instances built in the workers, userspace on the page's main thread.
 */
import type { Browser } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, serveProject } from './browser-env.js';

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
  let browser: Browser;
  let server: ViteDevServer;
  let base: string;

  beforeAll(async () => {
    ({ server, url: base } = await serveProject());
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('keeps the shadow page table in sync and delivers every notification to the page', async () => {
    const seed = 11;
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${base}/test/browser/pages/track-run.html?vcpus=2&trackPages=32&iterations=4&seed=${seed}`);
    await page.waitForFunction(() => window.__dirtyringTrack?.done === true, undefined, { timeout: 90_000 });
    const result = (await page.evaluate(() => window.__dirtyringTrack)) as { isolated: boolean; error?: string; summary?: TrackSummary };
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
    await page.close();
  });
});
