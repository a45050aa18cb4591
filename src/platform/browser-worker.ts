/**
 * The browser half of every worker host: a comlink handle on a module Web Worker that records
 * its death. A comlink call to a dead worker never settles, so the worker's 'error' event is the
 * only sign of it; callers watch `failure`. (The Worker itself is built by each host, because
 * Vite only bundles a worker whose `new URL(...)` is written inline in the constructor.)
 */
import { type Remote, releaseProxy, wrap } from 'comlink';

export interface BrowserWorkerHandle<Api> {
  readonly api: Remote<Api>;
  readonly failure: string | null;
  terminate(): Promise<void>;
}

/** Wrap `worker`; `label` names it in the failure ("vCPU 2 worker: ..."). */
export function hostBrowserWorker<Api>(worker: Worker, label: string): BrowserWorkerHandle<Api> {
  let failure: string | null = null;
  worker.addEventListener('error', (e: ErrorEvent) => {
    failure = `${label}: ${e.message || 'failed to load'}`;
  });
  const api = wrap<Api>(worker);
  return {
    api,
    get failure() {
      return failure;
    },
    async terminate() {
      api[releaseProxy]();
      worker.terminate();
    },
  };
}
