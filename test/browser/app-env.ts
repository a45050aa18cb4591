/**
 * The app's browser tests: one Vite dev server and one headless Chromium per file, a fresh tab
 * per test on the app at `/`, its console collected. Each test ends by checking what every app
 * page must: cross-origin isolated, no page error, no console error.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ConsoleLog, chromiumMissing, launchChromium, serveProject } from './browser-env.js';

/** Where the tests save their screenshots (not committed; docs/app holds the published ones). */
export const SHOT_DIR = process.env['APP_SCREENSHOT_DIR'] ?? 'test-results/app';

export interface AppTab {
  readonly page: Page;
  readonly log: ConsoleLog;
  /** `window.__dirtyringApp` (src/app/app-state.ts). */
  probe<T = Record<string, unknown>>(): Promise<T>;
  /** Wait (bounded) until `check(probe)` holds in the page. */
  waitFor(check: string, timeoutMs?: number): Promise<void>;
  /** Save a screenshot and return the number of distinct colours in the named canvases. */
  shot(name: string, canvases: readonly string[]): Promise<Record<string, number>>;
  /** Context for assertion messages: the URL and the page's console. */
  context(): string;
  /** Checks every tab ends with: isolated, no page or console error. */
  finish(): Promise<void>;
}

export function describeApp(title: string, body: (open: (query?: string) => Promise<AppTab>) => void): void {
  if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);
  describe.skipIf(chromiumMissing !== null)(title, () => {
    let browser: Browser | undefined;
    let server: ViteDevServer | undefined;
    let base = '';
    beforeAll(async () => {
      ({ server, url: base } = await serveProject());
      browser = await launchChromium();
      mkdirSync(SHOT_DIR, { recursive: true });
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });
    body(async (query = '') => {
      const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
      const log = new ConsoleLog(page);
      const url = `${base}/${query}`;
      await page.goto(url, { timeout: 15_000 });
      // The tabs appear once the app itself has loaded (after the isolation check).
      await page.waitForSelector('#app nav.tabs', { timeout: 15_000 });
      return appTab(page, log, url);
    });
  });
}

function appTab(page: Page, log: ConsoleLog, url: string): AppTab {
  const context = (): string => `${url}\npage log:\n${log.lines.join('\n')}`;
  return {
    page,
    log,
    context,
    probe: <T>() => page.evaluate(() => (window as unknown as { __dirtyringApp: unknown }).__dirtyringApp) as Promise<T>,
    async waitFor(check: string, timeoutMs = 60_000) {
      try {
        await page.waitForFunction(`(() => { const app = window.__dirtyringApp; return ${check}; })()`, undefined, { timeout: timeoutMs, polling: 50 });
      } catch (e) {
        const state = await page.evaluate(() => JSON.stringify({ ...(window as unknown as { __dirtyringApp: object }).__dirtyringApp, frameMs: undefined, frameGapMs: undefined }));
        throw new Error(`waiting for ${check}: ${e instanceof Error ? e.message : String(e)}\napp: ${state}\n${context()}`, { cause: e });
      }
    },
    async shot(name, canvases) {
      const colours = await page.evaluate((ids) => {
        const out: Record<string, number> = {};
        for (const id of ids) {
          const c = document.getElementById(id) as HTMLCanvasElement | null;
          if (!c) {
            out[id] = 0;
            continue;
          }
          const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          const colours = new Set<number>();
          for (let i = 0; i < data.length; i += 4) colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
          out[id] = colours.size;
        }
        return out;
      }, canvases);
      await page.screenshot({ path: join(SHOT_DIR, `${name}.png`), fullPage: true });
      return colours;
    },
    async finish() {
      const isolated = await page.evaluate(() => crossOriginIsolated);
      expect(isolated, context()).toBe(true);
      expect(log.errors, context()).toEqual([]);
      await page.close();
    },
  };
}
