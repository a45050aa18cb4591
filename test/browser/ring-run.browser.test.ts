/**
 * The same vCPU worker source that Node runs, as module Web Workers in headless Chromium:
 * a short ring run with small rings (so stalls happen), userspace on the page's main thread.
 */
import { expect, it } from 'vitest';
import { describeInBrowser } from './browser-env.js';

interface RingSummary {
  ok: boolean;
  lostPages: number;
  ringFullExits: number;
  iterations: number;
  error: string | null;
}

describeInBrowser('ring run in headless Chromium', (pages) => {
  it('runs vCPU module workers that fill 256-entry rings and loses no page', async () => {
    const { summary: s, context } = await pages.run<RingSummary>('ring-run', { vcpus: 2, ringEntries: 256, iterations: 6, seed: 7 });
    expect(s.iterations, context).toBe(6);
    expect(s.lostPages, context).toBe(0);
    expect(s.ringFullExits, context).toBeGreaterThan(0);
    expect(s.ok, context).toBe(true);
  });
});
