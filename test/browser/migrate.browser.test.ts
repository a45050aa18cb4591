/**
 * The migration engine in headless Chromium: the same platform-neutral loop as in Node, with
 * module Web Workers as vCPUs and as the destination thread.
 */
import { expect, it } from 'vitest';
import { describeInBrowser } from './browser-env.js';

interface MigrationSummary {
  ok: boolean;
  verified: boolean;
  rounds: number;
  pagesSent: number;
  destinationThread: boolean;
  error: string | null;
}

describeInBrowser('live migration in headless Chromium', (pages) => {
  it.each(['ring', 'clear'] as const)('--log %s with a destination worker verifies byte for byte', async (log) => {
    const { summary: s, context } = await pages.run<MigrationSummary>('migrate', { log, vcpus: 2, mib: 16, destinationThread: 1, seed: 21 });
    expect(s.destinationThread, context).toBe(true);
    expect(s.rounds, context).toBeGreaterThanOrEqual(2);
    expect(s.pagesSent, context).toBeGreaterThanOrEqual(4096);
    expect(s.verified, context).toBe(true);
    expect(s.ok, context).toBe(true);
  });
});
