/**
 * The static build (`vite build`) served by a plain file server that sends no isolation
 * headers: the app's service worker supplies COOP/COEP after one reload, the page is cross-
 * origin isolated, and a live run (module workers from the build) finishes clean; a stress
 * campaign with an SDK harvester runs its nested participant workers from the build, and a
 * free campaign of a threaded one its nested harvester-thread workers.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumMissing, launchChromium, ConsoleLog } from './browser-env.js';
import { describe } from 'vitest';

const OUT = 'test-results/app-static';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/** Serves `root` with no headers beyond the content type, like a bare static host. */
function serveStatic(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
  }));
}

describe.skipIf(chromiumMissing !== null)('the static build, hosted without headers', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let base = '';
  beforeAll(async () => {
    execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--outDir', OUT, '--emptyOutDir', '--logLevel', 'error'], { stdio: 'inherit', timeout: 120_000 });
    ({ server, url: base } = await serveStatic(OUT));
    browser = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('becomes cross-origin isolated through its service worker and runs', async () => {
    const page = await browser!.newPage();
    const log = new ConsoleLog(page);
    await page.goto(`${base}/?view=live&iterations=3&intervalMs=50`, { timeout: 15_000 });
    // The first load registers the worker and reloads; the second is isolated.
    try {
      await page.waitForFunction(() => crossOriginIsolated && document.getElementById('btn-start') !== null, undefined, { timeout: 30_000 });
    } catch (e) {
      throw new Error(`not isolated: ${await page.evaluate(() => document.body.innerText)}\n${log.lines.join('\n')}`, { cause: e });
    }
    await page.click('#btn-start');
    await page.waitForFunction(() => (window as unknown as { __dirtyringApp: { live: { summary: unknown } } }).__dirtyringApp.live.summary !== null, undefined, { timeout: 60_000 });
    const summary = await page.evaluate(() => (window as unknown as { __dirtyringApp: { live: { summary: { ok: boolean } } } }).__dirtyringApp.live.summary);
    expect(summary.ok, log.lines.join('\n')).toBe(true);
    expect(log.errors, log.lines.join('\n')).toEqual([]);
    await page.close();
  });

  it('runs a controlled stress campaign of an SDK harvester from the build', async () => {
    const page = await browser!.newPage();
    const log = new ConsoleLog(page);
    await page.goto(`${base}/?view=stress&harvester=sdk-qemu-reaper&seed=2`, { timeout: 15_000 });
    await page.waitForFunction(() => crossOriginIsolated && document.getElementById('st-start') !== null, undefined, { timeout: 30_000 });
    await page.fill('#st-runs', '10');
    await page.click('#st-start');
    await page.waitForFunction(() => (window as unknown as { __dirtyringApp: { stress: { done: boolean } } }).__dirtyringApp.stress.done, undefined, { timeout: 60_000 });
    const stress = await page.evaluate(() => (window as unknown as { __dirtyringApp: { stress: { runs: number; error: string | null; harvester: string | null } } }).__dirtyringApp.stress);
    expect(stress, log.lines.join('\n')).toMatchObject({ runs: 10, error: null, harvester: 'qemu-reaper' });
    expect(await page.textContent('#st-status')).toMatch(/^10 controlled runs of harvester qemu-reaper \(ring mode\) under the sc memory model in [\d.]+ s: 0 forbidden\.$/);
    expect(log.errors, log.lines.join('\n')).toEqual([]);
    await page.close();
  });

  it('runs a free campaign of a harvester with threads of its own on harvester-thread workers from the build', async () => {
    const page = await browser!.newPage();
    const log = new ConsoleLog(page);
    await page.goto(`${base}/?view=stress&harvester=sdk-per-vcpu-threads&seed=3`, { timeout: 15_000 });
    await page.waitForFunction(() => crossOriginIsolated && document.getElementById('st-start') !== null, undefined, { timeout: 30_000 });
    await page.selectOption('#st-mode', 'free');
    await page.fill('#st-runs', '2');
    await page.click('#st-start');
    await page.waitForFunction(() => (window as unknown as { __dirtyringApp: { stress: { done: boolean } } }).__dirtyringApp.stress.done, undefined, { timeout: 90_000 });
    const stress = await page.evaluate(() => (window as unknown as { __dirtyringApp: { stress: { runs: number; error: string | null; harvester: string | null; harvesterThreadWorkers: number } } }).__dirtyringApp.stress);
    expect(stress, log.lines.join('\n')).toMatchObject({ runs: 2, error: null, harvester: 'per-vcpu-threads', harvesterThreadWorkers: 4 });
    expect(await page.textContent('#st-status')).toMatch(/^2 free runs of harvester per-vcpu-threads \(ring mode, 2 threads of its own\) on real worker threads in [\d.]+ s: 0 forbidden\.$/);
    expect(log.errors, log.lines.join('\n')).toEqual([]);
    await page.close();
  });
});
