import { expect } from 'vitest';
import { type RunSummary, runDirtyLog } from '../../src/harness/run.js';
import type { RunConfig } from '../../src/harness/run-config.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { withWatchdog } from './watchdog.js';

/** A run with no forbidden outcome; on failure the message carries the seed and first details. */
export function expectClean(s: RunSummary): void {
  const context = `seed ${s.seed} (${s.log}): ${JSON.stringify({
    error: s.error,
    lost: s.lost.slice(0, 3),
    mismatches: s.mismatches.slice(0, 3),
    resetMismatches: s.resetMismatches,
  })}`;
  expect(s.error, context).toBeNull();
  expect(s.lostPages, context).toBe(0);
  expect(s.wrongValues, context).toBe(0);
  expect(s.copyMismatches, context).toBe(0);
  expect(s.resetMismatches, context).toBe(0);
  expect(s.badEntries, context).toBe(0);
  expect(s.kernelWarnings, context).toBe(0);
  expect(s.ok, context).toBe(true);
}

/**
 * runDirtyLog with worker-thread vCPUs under a watchdog of `watchdogMs` (whose failure names
 * the seed); `memoryBytes` is the guest size unless the config gives one.
 */
export function watchedRun(
  config: Partial<RunConfig>,
  what: string,
  { memoryBytes, watchdogMs }: { memoryBytes: number; watchdogMs: number },
): Promise<RunSummary> {
  const seed = config.seed ?? 0;
  return withWatchdog(seed, watchdogMs, what, () => runDirtyLog({ memoryBytes, ...config }, { spawn: spawnNodeVcpuWorker }));
}
