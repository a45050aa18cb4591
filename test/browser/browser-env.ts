/**
 * The browser tests' one helper: Debian's Chromium, headless, on pages the project's Vite dev
 * server serves (test/browser/pages/page.html?page=NAME). A page publishes its outcome; the
 * helper waits for it (bounded), collects the page's console, and checks what every page must.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type ViteDevServer, createServer } from 'vite';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { OUTCOME_GLOBAL, type PageOutcome } from './pages/test-page.js';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const chromiumMissing: string | null = existsSync(CHROMIUM_PATH)
  ? null
  : `Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`;

const PAGE_PATH = '/test/browser/pages/page.html';
/** Loading the page; bounded well inside the browser config's test timeout, with the wait below. */
const GOTO_TIMEOUT_MS = 15_000;
/** Waiting for the page's outcome, by default. */
const OUTCOME_TIMEOUT_MS = 90_000;

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // As root there is no sandbox; the network flags keep Chromium off this closed network.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function serveProject(): Promise<{ server: ViteDevServer; url: string }> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const server = await createServer({
    root,
    configFile: fileURLToPath(new URL('../../vite.config.ts', import.meta.url)),
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite: no listening address');
  return { server, url: `http://127.0.0.1:${address.port}` };
}

/** A page's console as the test sees it: every message, and the errors among them. */
export class ConsoleLog {
  readonly lines: string[] = [];
  readonly errors: string[] = [];

  constructor(page: Page) {
    page.on('console', (m) => {
      this.lines.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'error') this.errors.push(m.text());
    });
    page.on('pageerror', (e) => {
      this.lines.push(`pageerror: ${e.message}`);
      this.errors.push(e.message);
    });
  }
}

/** A finished page: its summary, and a context for assertion messages (URL, console, outcome). */
export interface PageRun<S> {
  readonly summary: S;
  readonly context: string;
}

export interface TestPages {
  /**
   * Opens page NAME with `params`, waits (bounded) for its outcome and checks what every page
   * must: it ran cross-origin isolated, threw nothing, logged no console error, and its summary
   * says no error.
   */
  run<S extends { error: string | null }>(name: string, params: Record<string, string | number>, timeoutMs?: number): Promise<PageRun<S>>;
}

/** Loads `path` in a new tab and waits for the page's outcome; the tab is closed afterwards. */
async function openPage(browser: Browser, url: string, timeoutMs: number): Promise<{ outcome: PageOutcome; log: ConsoleLog }> {
  const page = await browser.newPage();
  const log = new ConsoleLog(page);
  try {
    await page.goto(url, { timeout: GOTO_TIMEOUT_MS });
    try {
      await page.waitForFunction(
        (name) => (window as unknown as Record<string, PageOutcome | undefined>)[name]?.done === true,
        OUTCOME_GLOBAL,
        { timeout: timeoutMs },
      );
    } catch (e) {
      // Playwright's TimeoutError names neither the page (whose URL carries the seed) nor what it logged.
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`${url}: ${message}\npage log:\n${log.lines.join('\n')}`, { cause: e });
    }
    const outcome = (await page.evaluate((name) => (window as unknown as Record<string, unknown>)[name], OUTCOME_GLOBAL)) as PageOutcome;
    return { outcome, log };
  } finally {
    await page.close();
  }
}

/**
 * A describe() whose tests run pages in one Chromium against one Vite server, both started
 * before its tests and closed after. Skipped, with a warning, where Chromium is missing.
 */
export function describeInBrowser(title: string, body: (pages: TestPages) => void): void {
  if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);
  describe.skipIf(chromiumMissing !== null)(title, () => {
    let browser: Browser | undefined;
    let server: ViteDevServer | undefined;
    let base = '';
    beforeAll(async () => {
      ({ server, url: base } = await serveProject());
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });
    body({
      async run<S extends { error: string | null }>(name: string, params: Record<string, string | number>, timeoutMs = OUTCOME_TIMEOUT_MS) {
        const query = new URLSearchParams({ page: name, ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) });
        const path = `${PAGE_PATH}?${query}`;
        const { outcome, log } = await openPage(browser!, `${base}${path}`, timeoutMs);
        const context = `${path}\npage log:\n${log.lines.join('\n')}\nresult: ${JSON.stringify(outcome)}`;
        expect(outcome.isolated, context).toBe(true);
        expect(outcome.error, context).toBeUndefined();
        expect(log.errors, context).toEqual([]);
        const summary = outcome.summary as S;
        expect(summary?.error, context).toBeNull();
        return { summary, context };
      },
    });
  });
}
