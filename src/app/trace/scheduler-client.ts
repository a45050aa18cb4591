/**
 * The page's side of the scheduler worker (workers/replay.worker.ts): a comlink call bounded by
 * a timeout, and failed at once when the worker dies (its 'error' event), so that a dead worker
 * is reported in the page and never leaves it waiting. One worker per request: a replay's pool
 * of participant workers goes away with it.
 */
import { type Remote, releaseProxy, wrap } from 'comlink';
import { withTimeout } from '../../platform/async-wait.js';
import type { TraceReplay } from '../../stress/controlled/trace-replay.js';

interface ReplayWorkerApi {
  replay(text: string, source: string): Promise<TraceReplay>;
}

/** A replay of a schedule file (tens to a few thousand steps) takes seconds at most. */
export const REPLAY_TIMEOUT_MS = 60_000;

function spawnSchedulerWorker(): Worker {
  return new Worker(new URL('../../../workers/replay.worker.ts', import.meta.url), { type: 'module', name: 'scheduler' });
}

/** The message of a failed call: comlink forwards the worker's error message (ConfigError's names the field). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function replayInWorker(text: string, source: string, timeoutMs = REPLAY_TIMEOUT_MS): Promise<TraceReplay> {
  const worker = spawnSchedulerWorker();
  const api: Remote<ReplayWorkerApi> = wrap<ReplayWorkerApi>(worker);
  let onError: ((e: ErrorEvent) => void) | undefined;
  const died = new Promise<never>((_, reject) => {
    onError = (e: ErrorEvent) => reject(new Error(`the scheduler worker died: ${e.message || 'it failed to load'}`));
    worker.addEventListener('error', onError);
  });
  try {
    return await withTimeout(Promise.race([api.replay(text, source), died]), timeoutMs, 'replaying the schedule in the scheduler worker');
  } finally {
    if (onError) worker.removeEventListener('error', onError);
    api[releaseProxy]();
    worker.terminate();
  }
}
