/** Spawning and ending bench worker threads, with bounded waits. */
import { Worker } from 'node:worker_threads';
import { BenchTimeoutError } from './timing.js';

/** A compiled worker next to the compiled bench (dist/bench/workers/NAME.js). */
export function benchWorkerUrl(name: string): URL {
  return new URL(`../workers/${name}.js`, import.meta.url);
}

export interface BenchWorker {
  readonly worker: Worker;
  /** Set when the worker threw or exited with an error. */
  failure: string | null;
  exited: boolean;
}

export async function spawnBenchWorker(name: string, workerData: unknown, timeoutMs = 15_000): Promise<BenchWorker> {
  const worker = new Worker(benchWorkerUrl(name), { workerData });
  const w: BenchWorker = { worker, failure: null, exited: false };
  worker.on('error', (e: unknown) => {
    w.failure = e instanceof Error ? (e.stack ?? e.message) : String(e);
  });
  worker.on('exit', (code) => {
    w.exited = true;
    if (code !== 0 && w.failure === null) w.failure = `worker ${name} exited with code ${code}`;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BenchTimeoutError(`starting worker ${name}`, timeoutMs)), timeoutMs);
    worker.once('online', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return w;
}

/** Wait for a worker to exit by itself, at most `timeoutMs`, then terminate it. */
export async function endBenchWorker(w: BenchWorker, timeoutMs = 5000): Promise<void> {
  if (w.exited) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      void w.worker.terminate().then(() => resolve());
    }, timeoutMs);
    w.worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
