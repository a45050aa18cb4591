/**
 * The migration engine in headless Chromium: the same platform-neutral loop as in Node, with
 * module Web Workers as vCPUs and as the destination thread.
 */
import type { Browser } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, serveProject } from './browser-env.js';

if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);

describe.skipIf(chromiumMissing !== null)('live migration in headless Chromium', () => {
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

  it.each(['ring', 'clear'] as const)('--log %s with a destination worker verifies byte for byte', async (log) => {
    const seed = 21;
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${base}/test/browser/pages/migrate.html?log=${log}&vcpus=2&mib=16&destinationThread=1&seed=${seed}`);
    await page.waitForFunction(() => window.__dirtyringMigration?.done === true, undefined, { timeout: 90_000 });
    const result = (await page.evaluate(() => window.__dirtyringMigration)) as {
      isolated: boolean;
      error?: string;
      summary?: { ok: boolean; verified: boolean; rounds: number; pagesSent: number; destinationThread: boolean; error: string | null };
    };
    const context = `seed ${seed}; page log:\n${logs.join('\n')}\nresult: ${JSON.stringify({ ...result, summary: { ...result.summary, roundReports: undefined } })}`;
    expect(result.isolated, context).toBe(true);
    expect(result.error, context).toBeUndefined();
    expect(result.summary?.error, context).toBeNull();
    expect(result.summary?.destinationThread, context).toBe(true);
    expect(result.summary?.rounds, context).toBeGreaterThanOrEqual(2);
    expect(result.summary?.pagesSent, context).toBeGreaterThanOrEqual(4096);
    expect(result.summary?.verified, context).toBe(true);
    expect(result.summary?.ok, context).toBe(true);
    await page.close();
  });
});
