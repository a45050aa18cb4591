/** Launching Debian's Chromium headless, and serving the project with Vite, for browser tests. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { type ViteDevServer, createServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const chromiumMissing: string | null = existsSync(CHROMIUM_PATH)
  ? null
  : `Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH`;

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

/** What a test page publishes on `window[global]` when it is done. */
export interface PageOutcome<S> {
  readonly isolated: boolean;
  readonly error?: string;
  readonly summary?: S;
}

/**
 * Registers the suite's hooks: one Vite server and one Chromium for all its tests. Returns a
 * handle whose `open` loads a test page and waits (bounded) for its outcome.
 */
export function browserSuite(): {
  open<S>(path: string, global: string, timeoutMs?: number): Promise<{ outcome: PageOutcome<S>; logs: string[] }>;
} {
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
  return {
    async open<S>(path: string, global: string, timeoutMs = 90_000) {
      const page = await browser!.newPage();
      const logs: string[] = [];
      page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
      try {
        // Bounded well inside the browser config's test timeout, with the wait below.
        await page.goto(`${base}${path}`, { timeout: 15_000 });
        try {
          await page.waitForFunction(
            (name) => (window as unknown as Record<string, { done?: boolean } | undefined>)[name]?.done === true,
            global,
            { timeout: timeoutMs },
          );
        } catch (e) {
          // Playwright's TimeoutError names neither the page (whose URL carries the seed) nor what it logged.
          const message = e instanceof Error ? e.message : String(e);
          throw new Error(`${path}: ${message}\npage log:\n${logs.join('\n')}`, { cause: e });
        }
        const outcome = (await page.evaluate(
          (name) => (window as unknown as Record<string, unknown>)[name],
          global,
        )) as PageOutcome<S>;
        return { outcome, logs };
      } finally {
        await page.close();
      }
    },
  };
}
