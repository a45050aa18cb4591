import { spawnBrowserVcpuWorker } from '../../../src/platform/browser-vcpu-host.js';

/**
 * The shape every browser test page module has. A page runs one job of the library on the
 * page's main thread (which may not block: every wait is asynchronous), with vCPUs in module
 * Web Workers built from workers/vcpu.worker.ts, and returns its summary; page.ts publishes it.
 */
export interface TestPage {
  /** Shown as the document title. */
  readonly title: string;
  /**
   * Runs the job with the URL's parameters; `progress` appends a line to the page. The summary
   * it resolves to is what the test reads; it must have `error: string | null`.
   */
  run(params: URLSearchParams, progress: (line: string) => void): Promise<unknown>;
}

/** What page.ts publishes on `window.__dirtyringPage`; the test waits until `done`. */
export interface PageOutcome<S = unknown> {
  readonly done: boolean;
  readonly isolated: boolean;
  readonly summary?: S;
  readonly error?: string;
}

/** The global the outcome is published on. */
export const OUTCOME_GLOBAL = '__dirtyringPage';

/** A numeric URL parameter, or its default. */
export function numberParam(params: URLSearchParams, name: string, dflt: number): number {
  return Number(params.get(name) ?? dflt);
}

/** The hooks a harness run takes on a page: vCPUs as module Web Workers, a line per iteration. */
export function harnessHooks(progress: (line: string) => void): {
  spawn: typeof spawnBrowserVcpuWorker;
  onIteration: (r: { iteration: number }) => void;
} {
  return { spawn: spawnBrowserVcpuWorker, onIteration: (r) => progress(`iteration ${r.iteration}: ok`) };
}
