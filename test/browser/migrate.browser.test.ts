/**
 * The migration engine in headless Chromium: the same platform-neutral loop as in Node, with
 * module Web Workers as vCPUs and as the destination thread.
 */
import { describe, expect, it } from 'vitest';
import { browserSuite, chromiumMissing } from './browser-env.js';

if (chromiumMissing) console.warn(`[browser tests skipped] ${chromiumMissing}`);

interface MigrationSummary {
  ok: boolean;
  verified: boolean;
  rounds: number;
  pagesSent: number;
  destinationThread: boolean;
  error: string | null;
}

describe.skipIf(chromiumMissing !== null)('live migration in headless Chromium', () => {
  const suite = browserSuite();

  it.each(['ring', 'clear'] as const)('--log %s with a destination worker verifies byte for byte', async (log) => {
    const seed = 21;
    const { outcome: result, logs } = await suite.open<MigrationSummary>(
      `/test/browser/pages/migrate.html?log=${log}&vcpus=2&mib=16&destinationThread=1&seed=${seed}`,
      '__dirtyringMigration',
    );
    const context = `seed ${seed}; page log:\n${logs.join('\n')}\nresult: ${JSON.stringify({ ...result, summary: { ...result.summary, roundReports: undefined } })}`;
    expect(result.isolated, context).toBe(true);
    expect(result.error, context).toBeUndefined();
    expect(result.summary?.error, context).toBeNull();
    expect(result.summary?.destinationThread, context).toBe(true);
    expect(result.summary?.rounds, context).toBeGreaterThanOrEqual(2);
    expect(result.summary?.pagesSent, context).toBeGreaterThanOrEqual(4096);
    expect(result.summary?.verified, context).toBe(true);
    expect(result.summary?.ok, context).toBe(true);
  });
});
