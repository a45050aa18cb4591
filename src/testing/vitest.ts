/**
 * The Vitest helper (`import { harvesterTest } from 'dirtyring/vitest'`): one test in your own
 * suite that runs a stress campaign with your harvester and fails with every failing run's seed,
 * outcome and replay command.
 *
 *   harvesterTest('my reaper survives 1000 controlled schedules', {
 *     harvester: new URL('./my-reaper.ts', import.meta.url), mode: 'controlled', runs: 1000,
 *   });
 */
import { test } from 'vitest';
import { checkHarvester } from '../api/check-harvester.js';
import type { StressOptions } from '../api/stress-api.js';

/** A test's bound: long enough for 1000 controlled micro-runs on a busy machine. */
const DEFAULT_TIMEOUT_MS = 600_000;

export function harvesterTest(name: string, options: StressOptions & { readonly harvester: string | URL }, timeoutMs = DEFAULT_TIMEOUT_MS): void {
  test(name, async () => {
    await checkHarvester(options);
  }, timeoutMs);
}

export { HarvesterCheckFailed, checkHarvester } from '../api/check-harvester.js';
