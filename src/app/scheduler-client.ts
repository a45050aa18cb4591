/**
 * The page's side of the scheduler workers (workers/scheduler.worker.ts for replays, the stress
 * view's stress/campaign.worker.ts for campaigns): a comlink call bounded by a timeout, and
 * failed at once when the worker dies (its 'error' event), so that a dead worker is reported in
 * the page and never leaves it waiting. One worker per request: a replay's pool or a campaign's
 * participant workers go away with it.
 */
import { type Remote, releaseProxy, wrap } from 'comlink';
import { withTimeout } from '../platform/async-wait.js';
import type { TraceReplay } from '../stress/controlled/trace-replay.js';
import type { PageCampaignRequest } from '../stress/page-campaign.js';
import type { AppCampaignResult, CampaignWorkerApi } from './stress/campaign.worker.js';
import type { WasmFile } from './wasm-choices.js';

interface SchedulerWorkerApi {
  replay(text: string, source: string): Promise<TraceReplay>;
}

/** A replay of a schedule file (tens to a few thousand steps) takes seconds at most. */
export const REPLAY_TIMEOUT_MS = 60_000;

function spawnSchedulerWorker(): Worker {
  return new Worker(new URL('../../workers/scheduler.worker.ts', import.meta.url), { type: 'module', name: 'scheduler' });
}

function spawnCampaignWorker(): Worker {
  return new Worker(new URL('./stress/campaign.worker.ts', import.meta.url), { type: 'module', name: 'campaign' });
}

/** The message of a failed call: comlink forwards the worker's error message (ConfigError's names the field). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Call the scheduler worker once: `call` gets its API; the result is bounded by `timeoutMs` and
 * fails at once if the worker dies. The worker (and its participants) ends with the call.
 */
async function withWorker<Api, T>(worker: Worker, what: string, timeoutMs: number, call: (api: Remote<Api>) => Promise<T>): Promise<T> {
  const api: Remote<Api> = wrap<Api>(worker);
  let onError: ((e: ErrorEvent) => void) | undefined;
  const died = new Promise<never>((_, reject) => {
    onError = (e: ErrorEvent) => reject(new Error(`the scheduler worker died: ${e.message || 'it failed to load'}`));
    worker.addEventListener('error', onError);
  });
  try {
    return await withTimeout(Promise.race([call(api), died]), timeoutMs, what);
  } finally {
    if (onError) worker.removeEventListener('error', onError);
    api[releaseProxy]();
    worker.terminate();
  }
}

export function replayInWorker(text: string, source: string, timeoutMs = REPLAY_TIMEOUT_MS): Promise<TraceReplay> {
  return withWorker<SchedulerWorkerApi, TraceReplay>(spawnSchedulerWorker(), 'replaying the schedule in the scheduler worker', timeoutMs, (api) => api.replay(text, source));
}

/** `harvester`: the chosen harvester's id ('builtin': the built-in collectors); `wasm`: the picked module. */
export function campaignInWorker(req: PageCampaignRequest, histogram: SharedArrayBuffer, harvester: string, wasm: WasmFile | null, timeoutMs: number): Promise<AppCampaignResult> {
  return withWorker<CampaignWorkerApi, AppCampaignResult>(spawnCampaignWorker(), 'the stress campaign in its worker', timeoutMs, (api) => api.campaign(req, histogram, harvester, wasm));
}
