/**
 * One `dirtyring run`: a VM logging dirty pages through one of KVM's three interfaces (dirty
 * rings, legacy GET, manual protect GET + CLEAR), vCPU worker threads running a guest workload,
 * optional DMA device threads writing with no running vCPU, and userspace (this thread) doing
 * what dirty_log_test's host does, for several writers:
 *
 *   for each iteration k:
 *     publish k, resume every vCPU and device;
 *     until the interval has passed (and the guests made progress): collect on the first pass,
 *       whenever a vCPU stalls on a full ring (then resume it), and periodically — copying
 *       every collected page to a destination as soon as it is safe to read;
 *     kick and park every writer; collect once more (device bitmap last);
 *     verify: the dirty_log_test oracle on every page, and destination == source byte for byte.
 *
 * The parts and the steps of an iteration are in dirty-log-run.ts, the poll loop in
 * iteration-loop.ts, the summary in run-summary.ts. Platform-neutral: the caller supplies how to
 * spawn a worker (Node or browser).
 */
import { isKvmError } from '../abi/errno.js';
import { now } from '../base/clock.js';
import { describeFailure } from '../userspace/guest-fleet.js';
import { DirtyLogRun } from './dirty-log-run.js';
import { type RunConfig, validateRunConfig } from './run-config.js';
import type { RunHooks } from './run-hooks.js';

/** How long a failed run lets pending worker events arrive before it names the failure (ms). */
const EXIT_EVENT_GRACE_MS = 50;
import { type RunSummary, summarizeRun } from './run-summary.js';

export type { IterationReport } from './iteration-report.js';
export type { PollAction, RunHooks } from './run-hooks.js';
export type { LockHold, RunSummary } from './run-summary.js';

export async function runDirtyLog(input: Partial<RunConfig>, hooks: RunHooks): Promise<RunSummary> {
  // A caller's collector (a user's harvester) is the rings' reaper: the hand-off design unless asked.
  const config = validateRunConfig(input.selfReap === undefined && hooks.createCollector !== undefined ? { ...input, selfReap: false } : input);
  hooks.onStart?.(config);
  const t0 = now();
  const run = new DirtyLogRun(config, hooks);
  let iterations = 0;
  let error: string | null = null;
  let interrupted = false;
  try {
    await run.start();
    for (let k = 1; k <= config.iterations; k++) {
      if (hooks.shouldStop?.() === true) {
        interrupted = true;
        break;
      }
      const report = await run.runIteration(k);
      iterations = k;
      hooks.onIteration?.(report);
    }
  } catch (e) {
    // A dead worker's 'exit' event reaches this thread only between tasks, and a synchronous
    // wait on that vCPU (a TLB flush's acknowledgement) throws before it: let it in first.
    if (!isKvmError(e)) await new Promise((resolve) => setTimeout(resolve, EXIT_EVENT_GRACE_MS));
    error = isKvmError(e) ? e.message : describeFailure(e, run.fleet);
  } finally {
    await run.collector.close?.();
    const err = await run.fleet.shutdown();
    if (err !== null && error === null) error = err;
  }
  const statistics = run.statistics();
  return summarizeRun({ config: run.config, iterations, error, interrupted, elapsedMs: now() - t0, ...statistics });
}

/** The ring run: `runDirtyLog` with `log: 'ring'` (the default). */
export const runRing = runDirtyLog;
