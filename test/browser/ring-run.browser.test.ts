/**
 * The same vCPU worker source that Node runs, as module Web Workers in headless Chromium:
 * a short ring run with small rings (so stalls happen), userspace on the page's main thread.
 */
import type { Browser } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, serveProject } from './browser-env.js';

if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);

describe.skipIf(chromiumMissing !== null)('ring run in headless Chromium', () => {
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

  it('runs vCPU module workers that fill 256-entry rings and loses no page', async () => {
    const seed = 7;
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${base}/test/browser/pages/ring-run.html?vcpus=2&ringEntries=256&iterations=6&seed=${seed}`);
    await page.waitForFunction(() => window.__dirtyring?.done === true, undefined, { timeout: 90_000 });
    const result = (await page.evaluate(() => window.__dirtyring)) as {
      isolated: boolean;
      error?: string;
      summary?: { ok: boolean; lostPages: number; ringFullExits: number; iterations: number; error: string | null };
    };
    const context = `seed ${seed}; page log:\n${logs.join('\n')}\nresult: ${JSON.stringify(result)}`;
    expect(result.isolated, context).toBe(true);
    expect(result.error, context).toBeUndefined();
    expect(result.summary?.error, context).toBeNull();
    expect(result.summary?.iterations, context).toBe(6);
    expect(result.summary?.lostPages, context).toBe(0);
    expect(result.summary?.ringFullExits, context).toBeGreaterThan(0);
    expect(result.summary?.ok, context).toBe(true);
    await page.close();
  });
});
