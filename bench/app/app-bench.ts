/**
 * `npm run bench:app`: the browser app under load, in headless Chromium. The same live run
 * (8 vCPUs, 256 MiB, ring mode, a fixed seed) is made four times:
 *
 *   - in Node (`runRing` with worker_threads vCPUs), before and after the page's run: guest
 *     writes per second (their mean is what the page is compared with; the machine's load moves);
 *   - in the app's live view, from the production build served with COOP/COEP, drawn
 *     throughout: guest writes per second, the time each frame's drawing took, and the
 *     intervals between animation frames (rAF timestamps, taken by a callback of the bench's
 *     own); before the run starts, the same page's intervals with nothing running;
 *   - in the live view again, shown and hidden in turns of a second (hidden, the page does no
 *     work per frame: what the run's threads alone leave a page); first it is traced through the
 *     DevTools protocol, shown and then hidden: the page thread's tasks, wall against CPU time.
 *
 * Targets: p95 frame interval ≤ 16.7 ms (60 frames/s), in-page throughput within 20 % of Node's.
 * Prints a table and writes bench/results/app.json. Options: --iterations N, --interval-ms N,
 * --vcpus N, --mib N, --seed N.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { type Browser, type Page, chromium } from 'playwright-core';
import { preview } from 'vite';
import { runRing } from '../../src/harness/run.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { type MainThreadFigures, traceMainThread } from './main-thread-trace.js';

interface Options {
  iterations: number;
  intervalMs: number;
  vcpus: number;
  mib: number;
  seed: number;
}

function options(argv: readonly string[]): Options {
  const o: Options = { iterations: 10, intervalMs: 500, vcpus: 8, mib: 256, seed: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in o) || !Number.isInteger(value) || value <= 0) throw new Error(`bench:app: bad option ${argv[i]} ${argv[i + 1] ?? ''}`);
    o[key] = value;
  }
  return o;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function nodeRun(o: Options): Promise<{ writesPerSec: number; elapsedMs: number; ok: boolean }> {
  const s = await runRing({ vcpus: o.vcpus, memoryBytes: o.mib * 2 ** 20, ringEntries: 4096, iterations: o.iterations, intervalMs: o.intervalMs, harvestIntervalMs: Math.max(1, Math.floor(o.intervalMs / 10)), seed: o.seed }, { spawn: spawnNodeVcpuWorker });
  return { writesPerSec: s.guestWrites / (s.elapsedMs / 1000), elapsedMs: s.elapsedMs, ok: s.ok };
}

interface PageResult {
  writesPerSec: number;
  elapsedMs: number;
  ok: boolean;
  /** The app's own figure: time its frame callback took. */
  frameMs: number[];
  /** Intervals between animation frames (rAF timestamps, an independent callback of the bench's). */
  gapMs: number[];
}

type Summary = { ok: boolean; guestWrites: number; elapsedMs: number } | null;
type Probe = { live: { summary: Summary }; frameMs: number[] };
type BenchWindow = { __dirtyringApp: Probe; __rafGaps: number[] };

/** The page's rAF intervals from now on, kept by a callback of the bench's own (the app's drawing is not in it). */
async function watchFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as BenchWindow;
    w.__rafGaps = [];
    let last = 0;
    const tick = (t: number): void => {
      if (last > 0) w.__rafGaps.push(t - last);
      last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

/** Take the intervals and the app's frame times recorded since the last call, and the run's summary. */
function takeFrames(page: Page): Promise<{ gaps: number[]; frameMs: number[]; summary: Summary }> {
  return page.evaluate(() => {
    const w = window as unknown as BenchWindow;
    return { gaps: w.__rafGaps.splice(0), frameMs: w.__dirtyringApp.frameMs.splice(0), summary: w.__dirtyringApp.live.summary };
  });
}

async function openLive(browser: Browser, base: string, o: Options): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const q = `view=live&vcpus=${o.vcpus}&memoryMiB=${o.mib}&ringEntries=4096&iterations=${o.iterations}&intervalMs=${o.intervalMs}&seed=${o.seed}`;
  await page.goto(`${base}/?${q}`, { timeout: 30_000 });
  await page.waitForSelector('#btn-start', { timeout: 30_000 });
  await watchFrames(page);
  return page;
}

const RUN_DEADLINE_MS = 30 * 60_000;

/**
 * The live run drawn throughout: its throughput, the app's frame times, and the rAF intervals
 * meanwhile; and first, the same page for IDLE_MS before the run starts (the machine's other
 * load, without the run's threads).
 */
async function pageRun(browser: Browser, base: string, o: Options): Promise<PageResult & { idleGapMs: number[] }> {
  const page = await openLive(browser, base, o);
  await page.waitForTimeout(IDLE_MS);
  const idleGapMs = (await takeFrames(page)).gaps;
  await page.click('#btn-start');
  const frameMs: number[] = [];
  const gapMs: number[] = [];
  const deadline = Date.now() + RUN_DEADLINE_MS;
  for (;;) {
    await page.waitForTimeout(1000);
    const p = await takeFrames(page);
    frameMs.push(...p.frameMs);
    gapMs.push(...p.gaps);
    if (p.summary) {
      await page.close();
      return { writesPerSec: p.summary.guestWrites / (p.summary.elapsedMs / 1000), elapsedMs: p.summary.elapsedMs, ok: p.summary.ok, frameMs, gapMs, idleGapMs };
    }
    if (Date.now() > deadline) throw new Error('bench:app: the page run did not finish within 30 minutes');
  }
}

const IDLE_MS = 3000;
const TRACE_MS = 2000;
/** A/B blocks of the second run: the live view shown (drawing) or hidden (the same run, nothing drawn). */
const BLOCK_MS = 1000;

/**
 * The same run again, the live view shown and hidden in turns of BLOCK_MS, so that both see
 * the same run phase and the same load from the rest of the machine: hidden, the page draws
 * nothing, and its frame intervals are what the run's threads and the machine leave a page
 * that does no work at all.
 */
async function abRun(browser: Browser, base: string, o: Options): Promise<{ shownGapMs: number[]; hiddenGapMs: number[]; mainThread: MainThreadFigures; mainThreadHidden: MainThreadFigures }> {
  const page = await openLive(browser, base, o);
  await page.click('#btn-start');
  // First, the view shown, a trace of the page's thread while it draws (tracing costs: these
  // intervals are left out, and the throughput is measured in the other run).
  await page.waitForTimeout(BLOCK_MS);
  const mainThread = await traceMainThread(page, TRACE_MS);
  // Then hidden, the same: what the page thread does when it draws nothing.
  await page.evaluate(() => (document.getElementById('view-live')!.hidden = true));
  const mainThreadHidden = await traceMainThread(page, TRACE_MS);
  const shownGapMs: number[] = [];
  const hiddenGapMs: number[] = [];
  const deadline = Date.now() + RUN_DEADLINE_MS;
  for (let k = 0; ; k++) {
    const hidden = k % 2 === 1;
    await page.evaluate((h) => (document.getElementById('view-live')!.hidden = h), hidden);
    await takeFrames(page);
    await page.waitForTimeout(BLOCK_MS);
    const p = await takeFrames(page);
    (hidden ? hiddenGapMs : shownGapMs).push(...p.gaps);
    if (p.summary || Date.now() > deadline) break;
  }
  await page.close();
  return { shownGapMs, hiddenGapMs, mainThread, mainThreadHidden };
}

/** p50, p95 and the share of intervals longer than one 60 Hz frame (a missed frame). */
function gapStats(gaps: readonly number[]): { n: number; p50Ms: number; p95Ms: number; latePercent: number } {
  const late = gaps.filter((g) => g > FRAME_MS + 1).length;
  return { n: gaps.length, p50Ms: percentile(gaps, 50), p95Ms: percentile(gaps, 95), latePercent: gaps.length ? (100 * late) / gaps.length : NaN };
}

const FRAME_MS = 1000 / 60;

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'error'], { stdio: 'inherit' });
  const server = await preview({ preview: { host: '127.0.0.1', port: 0 }, logLevel: 'error' });
  const address = server.httpServer.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const browser = await chromium.launch({ executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const loadBefore = loadavg()[0]!;
    // Node before and after the page's run: the machine's load moves between them, and the page
    // is compared with their mean.
    const nodeBefore = await nodeRun(o);
    const inPage = await pageRun(browser, base, o);
    const nodeAfter = await nodeRun(o);
    const node = { writesPerSec: (nodeBefore.writesPerSec + nodeAfter.writesPerSec) / 2, elapsedMs: (nodeBefore.elapsedMs + nodeAfter.elapsedMs) / 2, ok: nodeBefore.ok && nodeAfter.ok };
    const ab = await abRun(browser, base, o);
    const result = {
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadavg()[0]! },
      options: o,
      node: { writesPerSec: Math.round(node.writesPerSec), elapsedMs: Math.round(node.elapsedMs), ok: node.ok, beforePage: Math.round(nodeBefore.writesPerSec), afterPage: Math.round(nodeAfter.writesPerSec) },
      page: {
        writesPerSec: Math.round(inPage.writesPerSec),
        elapsedMs: Math.round(inPage.elapsedMs),
        ok: inPage.ok,
        frames: inPage.frameMs.length,
        drawP50Ms: percentile(inPage.frameMs, 50),
        drawP95Ms: percentile(inPage.frameMs, 95),
        mainThreadTrace: ab.mainThread,
        mainThreadTraceHidden: ab.mainThreadHidden,
      },
      pageVsNode: inPage.writesPerSec / node.writesPerSec,
      frameIntervals: {
        idleBeforeRun: gapStats(inPage.idleGapMs),
        drawingRun: gapStats(inPage.gapMs),
        abShown: gapStats(ab.shownGapMs),
        abHidden: gapStats(ab.hiddenGapMs),
      },
    };
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/app.json', `${JSON.stringify(result, null, 1)}\n`);
    report(o, result);
  } finally {
    await browser.close();
    await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
  }
}

type GapStats = ReturnType<typeof gapStats>;

function report(
  o: Options,
  r: { machine: { cpus: number; loadAverage1mBefore: number; loadAverage1mAfter: number }; node: { writesPerSec: number; ok: boolean; beforePage: number; afterPage: number }; page: { writesPerSec: number; ok: boolean; frames: number; drawP50Ms: number; drawP95Ms: number; mainThreadTrace: MainThreadFigures; mainThreadTraceHidden: MainThreadFigures }; pageVsNode: number; frameIntervals: Record<string, GapStats> },
): void {
  const p = r.page;
  const row = (name: string, g: GapStats): string =>
    `    ${name.padEnd(34)} ${String(g.n).padStart(5)} intervals, p50 ${g.p50Ms.toFixed(1)} ms, p95 ${g.p95Ms.toFixed(1)} ms, ${g.latePercent.toFixed(1)} % late${g.p95Ms <= FRAME_MS + 0.5 ? '  (60 frames/s)' : ''}`;
  const f = r.frameIntervals;
  console.log(`bench:app  ${o.vcpus} vCPUs, ${o.mib} MiB, ${o.iterations} × ${o.intervalMs} ms, seed ${o.seed}, ${r.machine.cpus} CPUs, load average ${r.machine.loadAverage1mBefore.toFixed(1)} → ${r.machine.loadAverage1mAfter.toFixed(1)}`);
  console.log(`  Node   : ${r.node.writesPerSec.toLocaleString('en')} guest writes/s, the mean of ${r.node.beforePage.toLocaleString('en')} before the page's run and ${r.node.afterPage.toLocaleString('en')} after (${r.node.ok ? 'clean' : 'NOT CLEAN'})`);
  console.log(`  page   : ${p.writesPerSec.toLocaleString('en')} guest writes/s (${p.ok ? 'clean' : 'NOT CLEAN'}) = ${(100 * r.pageVsNode).toFixed(0)} % of Node (target ≥ 80 %)`);
  console.log(`  drawing: ${p.frames} frames, p50 ${p.drawP50Ms.toFixed(2)} ms, p95 ${p.drawP95Ms.toFixed(2)} ms per frame`);
  const traced = (what: string, m: MainThreadFigures): string =>
    `  page thread, ${m.windowMs} ms traced ${what}: ${m.tasks} tasks, ${m.wallMs.toFixed(0)} ms wall, ${m.cpuMs.toFixed(0)} ms CPU; the ${m.longTasks} longer than a frame: ${m.longWallMs.toFixed(0)} ms wall, ${m.longCpuMs.toFixed(0)} ms CPU` +
    (m.runQueueMs === null ? '' : `; kernel, over ${m.schedWindowMs!.toFixed(0)} ms: ${m.schedCpuMs!.toFixed(0)} ms on a core, ${m.runQueueMs.toFixed(0)} ms runnable waiting for one`);
  console.log(traced('while drawing', p.mainThreadTrace));
  console.log(traced('with the view hidden', p.mainThreadTraceHidden));
  console.log('  frame intervals (rAF timestamps; target p95 ≤ 16.7 ms, late = over one 60 Hz frame):');
  console.log(row('idle page, before the run', f['idleBeforeRun']!));
  console.log(row('run, live view drawing', f['drawingRun']!));
  console.log(row('A/B run, live view shown', f['abShown']!));
  console.log(row('A/B run, live view hidden (no work)', f['abHidden']!));
}

await main();
