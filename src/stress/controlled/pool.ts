/**
 * Participant workers kept across the runs of a campaign: starting a worker costs far more
 * than a micro-run, so each is spawned once and given a new VM for every run.
 *
 * The pool is also what keeps one bad run from poisoning the next:
 *  - a worker joins the pool only once it has answered a ping, and a worker that crashed or
 *    exited (its handle reports a failure) is replaced before the next run uses it, so a run is
 *    never handed to a worker that cannot take it;
 *  - a worker that never came back from a run is terminated and replaced (`replace`);
 *  - runs hold the pool exclusively (`lease`), one after the other: a campaign abandoned by its
 *    caller (a test that timed out) keeps running in the background, and two engines granting
 *    moves on the same workers would each leave the other's participants waiting for a grant.
 * Every wait here is bounded.
 */
import { TimeoutError, withTimeout } from '../../platform/async-wait.js';
import type { ControlledWorkerHandle, SpawnControlledWorker } from './participant-api.js';

/** A fresh worker must load its modules and answer a ping within this. */
const SPAWN_TIMEOUT_MS = 15_000;
/** Terminating a worker (even one blocked in Atomics.wait) takes milliseconds; do not hang on it. */
const TERMINATE_TIMEOUT_MS = 5_000;
/** How long a run waits for the run before it to release the pool. */
const LEASE_TIMEOUT_MS = 120_000;
/** How often a pending call re-checks whether its worker died (its reply would never come). */
const FAILURE_POLL_MS = 10;

/** A control-plane call that cannot complete: the worker died, or did not answer in time. */
class WorkerLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerLost';
  }
}

/**
 * Settle `call` (a comlink call on `handle`'s worker) within `timeoutMs`. comlink never settles
 * a call whose worker died, so the worker's failure ends the wait as well as the clock does.
 */
export async function callWorker<T>(handle: ControlledWorkerHandle, call: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let settled = false;
  const watch = new Promise<never>((_, reject) => {
    const deadline = performance.now() + timeoutMs;
    const check = (): void => {
      if (settled) return;
      const failure = handle.failure;
      if (failure !== null) reject(new WorkerLost(`${what}: the worker died (${failure})`));
      else if (performance.now() >= deadline) reject(new WorkerLost(new TimeoutError(what, timeoutMs).message));
      else timer = setTimeout(check, FAILURE_POLL_MS);
    };
    check();
  });
  try {
    return await Promise.race([call, watch]);
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

export class ParticipantPool {
  /** Worker p runs participant p; a hole is a worker that failed to start (retried next time). */
  private readonly workers: (ControlledWorkerHandle | undefined)[] = [];
  private leaseTail: Promise<void> = Promise.resolve();

  constructor(private readonly spawn: SpawnControlledWorker) {}

  /**
   * Take the pool for one run; the returned function gives it back. Waits (bounded) for the run
   * holding it.
   */
  async lease(): Promise<() => void> {
    const previous = this.leaseTail;
    let release!: () => void;
    this.leaseTail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await withTimeout(previous, LEASE_TIMEOUT_MS, 'the controlled worker pool is still held by another run');
    } catch (e) {
      // Our turn in the queue is still taken when the run before us ends, so pass it on.
      void previous.then(release);
      throw e;
    }
    return release;
  }

  /**
   * Make sure workers 0 .. n − 1 are up and answering, replacing any that crashed or exited
   * since the last run. Throws WorkerLost when a worker cannot be started; its slot stays empty
   * and the next call tries again.
   */
  async ensure(n: number): Promise<void> {
    const starting: Promise<void>[] = [];
    for (let p = 0; p < n; p++) {
      const w = this.workers[p];
      if (w !== undefined && w.failure === null) continue;
      this.workers[p] = undefined;
      if (w !== undefined) starting.push(terminate(w).then(() => this.start(p)));
      else starting.push(this.start(p));
    }
    const outcomes = await Promise.allSettled(starting);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed.length > 0) throw failed[0]!.reason;
  }

  /** Spawn worker p; it joins the pool only once it answered. */
  private async start(p: number): Promise<void> {
    const w = this.spawn(p);
    try {
      await callWorker(w, w.api.ping(), SPAWN_TIMEOUT_MS, `starting controlled worker ${p}`);
    } catch (e) {
      await terminate(w);
      throw e;
    }
    this.workers[p] = w;
  }

  handle(p: number): ControlledWorkerHandle {
    const w = this.workers[p];
    if (!w) throw new Error(`no controlled worker ${p}`);
    return w;
  }

  /**
   * Replace worker p (stuck, crashed, or it lost a result): terminate it and start a fresh one.
   * Never throws: a replacement that fails to start leaves the slot empty for `ensure` to retry,
   * and the returned message says so.
   */
  async replace(p: number): Promise<string | null> {
    const old = this.workers[p];
    this.workers[p] = undefined;
    if (old !== undefined) await terminate(old);
    try {
      await this.start(p);
      return null;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }

  get size(): number {
    return this.workers.filter((w) => w !== undefined).length;
  }

  async close(): Promise<void> {
    const all = this.workers.splice(0).filter((w): w is ControlledWorkerHandle => w !== undefined);
    await Promise.all(all.map(terminate));
  }
}

/** Terminate a worker, bounded; a worker that will not even die is abandoned (it holds nothing the pool needs). */
async function terminate(w: ControlledWorkerHandle): Promise<void> {
  await withTimeout(w.terminate(), TERMINATE_TIMEOUT_MS, 'terminating a controlled worker').catch(() => undefined);
}
