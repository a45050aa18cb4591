/**
 * The same vCPU worker source that Node runs, as module Web Workers in headless Chromium:
 * a short ring run with small rings (so stalls happen), userspace on the page's main thread.
 */
import { describe, expect, it } from 'vitest';
import { browserSuite, chromiumMissing } from './browser-env.js';

if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);

interface RingSummary {
  ok: boolean;
  lostPages: number;
  ringFullExits: number;
  iterations: number;
  error: string | null;
}

describe.skipIf(chromiumMissing !== null)('ring run in headless Chromium', () => {
  const suite = browserSuite();

  it('runs vCPU module workers that fill 256-entry rings and loses no page', async () => {
    const seed = 7;
    const { outcome, logs } = await suite.open<RingSummary>(
      `/test/browser/pages/ring-run.html?vcpus=2&ringEntries=256&iterations=6&seed=${seed}`,
      '__dirtyring',
    );
    const context = `seed ${seed}; page log:\n${logs.join('\n')}\nresult: ${JSON.stringify(outcome)}`;
    expect(outcome.isolated, context).toBe(true);
    expect(outcome.error, context).toBeUndefined();
    expect(outcome.summary?.error, context).toBeNull();
    expect(outcome.summary?.iterations, context).toBe(6);
    expect(outcome.summary?.lostPages, context).toBe(0);
    expect(outcome.summary?.ringFullExits, context).toBeGreaterThan(0);
    expect(outcome.summary?.ok, context).toBe(true);
  });
});
