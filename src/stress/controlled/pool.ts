/**
 * Participant workers kept across the runs of a campaign: starting a worker costs far more
 * than a micro-run, so each is spawned once and given a new VM for every run. A worker that
 * got stuck (never parked again) is replaced.
 */
import { withTimeout } from '../../platform/async-wait.js';
import type { ControlledWorkerHandle, SpawnControlledWorker } from './participant-api.js';

const START_TIMEOUT_MS = 60_000;

export class ParticipantPool {
  private readonly workers: ControlledWorkerHandle[] = [];

  constructor(private readonly spawn: SpawnControlledWorker) {}

  /** Make sure at least `n` workers are up (and answering). */
  async ensure(n: number): Promise<void> {
    const fresh: Promise<string>[] = [];
    while (this.workers.length < n) {
      const w = this.spawn(this.workers.length);
      this.workers.push(w);
      fresh.push(withTimeout(w.api.ping(), START_TIMEOUT_MS, `starting controlled worker ${this.workers.length - 1}`));
    }
    await Promise.all(fresh);
  }

  handle(p: number): ControlledWorkerHandle {
    const w = this.workers[p];
    if (!w) throw new Error(`no controlled worker ${p}`);
    return w;
  }

  /** Replace worker `p` (stuck or crashed) by a fresh one. */
  async replace(p: number): Promise<void> {
    const old = this.workers[p];
    const w = this.spawn(p);
    this.workers[p] = w;
    await old?.terminate();
    await withTimeout(w.api.ping(), START_TIMEOUT_MS, `restarting controlled worker ${p}`);
  }

  get size(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}
