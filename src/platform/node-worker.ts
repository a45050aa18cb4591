/**
 * The Node half of every worker host: where a compiled worker is, and a comlink handle on a
 * worker_threads Worker that records its death. A comlink call to a dead worker never settles,
 * so the worker's 'error' and 'exit' events are the only sign of it; callers watch `failure`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { type Remote, releaseProxy, wrap } from 'comlink';
import { nodeEndpoint } from './node-endpoint.js';

/** A comlink-wrapped worker on any platform. */
interface WatchedWorker<Api> {
  readonly api: Remote<Api>;
  /** Set when the worker crashed, failed to load, or exited without being asked to. */
  readonly failure: string | null;
  terminate(): Promise<void>;
}

/**
 * Where the compiled worker `workers/<fileName>` is: next to this module when running from
 * dist/, in dist/ when running from TypeScript sources (tests, which Vitest cannot hand to a
 * worker thread), or wherever the environment variable `overrideEnv` points.
 */
export function compiledWorkerUrl(fileName: string, overrideEnv: string, label: string): URL {
  const override = process.env[overrideEnv];
  if (override) return pathToFileURL(override);
  const sibling = new URL(`../../workers/${fileName}`, import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL(`../../dist/workers/${fileName}`, import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`compiled ${label} not found (looked at ${fileURLToPath(sibling)}); run \`npm run build\``);
}

/**
 * Wraps `worker` with comlink and records its failure. Any exit we did not ask for counts,
 * code 0 included: the worker's calls are as lost as after a crash.
 */
export function watchNodeWorker<Api>(worker: Worker, label: string): WatchedWorker<Api> {
  let failure: string | null = null;
  let exited = false;
  let terminating = false;
  worker.on('error', (e: unknown) => {
    failure = e instanceof Error ? (e.stack ?? e.message) : String(e);
  });
  worker.on('exit', (code) => {
    exited = true;
    if (failure === null && !terminating) failure = `${label} exited with code ${code}`;
  });
  const api = wrap<Api>(nodeEndpoint(worker));
  return {
    api,
    get failure() {
      return failure;
    },
    async terminate() {
      terminating = true;
      api[releaseProxy]();
      if (!exited) await worker.terminate();
    },
  };
}
