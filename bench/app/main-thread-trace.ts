/**
 * For `npm run bench:app`: a Chrome DevTools protocol trace of the page while it draws, reduced to
 * what tells a busy page thread from a starved one. For each top-level task of the page's main
 * thread (CrRendererMain) the trace has its wall time (dur) and its thread CPU time (tdur): a
 * task that took 100 ms of wall time and 5 ms of CPU was waiting for a core, not working.
 */
import type { CDPSession, Page } from 'playwright-core';
import { findRenderer, sampleMainThread } from './run-queue.js';

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

export interface MainThreadFigures {
  readonly windowMs: number;
  /** Top-level tasks of the main thread, and their summed wall and CPU time (ms). */
  readonly tasks: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  /** Of them, the tasks whose wall time exceeded one 60 Hz frame. */
  readonly longTasks: number;
  readonly longWallMs: number;
  readonly longCpuMs: number;
  /** From the kernel over the same window: the main thread's CPU time, and its time runnable but waiting for a core (null off Linux). */
  readonly schedCpuMs: number | null;
  readonly runQueueMs: number | null;
  /** The wall time between the kernel's two samples (the trace's start and end included). */
  readonly schedWindowMs: number | null;
}

const CATEGORIES = 'toplevel,disabled-by-default-devtools.timeline';
const FRAME_US = 1e6 / 60;

async function record(cdp: CDPSession, page: Page, windowMs: number): Promise<TraceEvent[]> {
  const events: TraceEvent[] = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...(e.value as unknown as TraceEvent[])));
  const complete = new Promise<void>((resolve) => cdp.once('Tracing.tracingComplete', () => resolve()));
  await cdp.send('Tracing.start', { categories: CATEGORIES, transferMode: 'ReportEvents' });
  await page.waitForTimeout(windowMs);
  await cdp.send('Tracing.end');
  await complete;
  return events;
}

/** Trace the page for `windowMs` and sum its main thread's top-level tasks. */
export async function traceMainThread(page: Page, windowMs: number): Promise<MainThreadFigures> {
  const cdp = await page.context().newCDPSession(page);
  const renderer = findRenderer();
  const before = renderer === null ? null : sampleMainThread(renderer);
  const t0 = performance.now();
  const events = await record(cdp, page, windowMs);
  const after = renderer === null ? null : sampleMainThread(renderer);
  const schedWindowMs = performance.now() - t0;
  await cdp.detach();
  const main = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const sched = before && after
    ? { schedCpuMs: after.cpuMs - before.cpuMs, runQueueMs: after.runQueueMs - before.runQueueMs, schedWindowMs }
    : { schedCpuMs: null, runQueueMs: null, schedWindowMs: null };
  const f = { windowMs, tasks: 0, wallMs: 0, cpuMs: 0, longTasks: 0, longWallMs: 0, longCpuMs: 0, ...sched };
  for (const e of events) {
    if (e.ph !== 'X' || e.name !== 'ThreadControllerImpl::RunTask' || !main.has(`${e.pid}:${e.tid}`)) continue;
    const wall = (e.dur ?? 0) / 1000;
    const cpu = (e.tdur ?? 0) / 1000;
    f.tasks++;
    f.wallMs += wall;
    f.cpuMs += cpu;
    if ((e.dur ?? 0) > FRAME_US) {
      f.longTasks++;
      f.longWallMs += wall;
      f.longCpuMs += cpu;
    }
  }
  return f;
}
