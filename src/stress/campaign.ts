/**
 * A stress campaign: many seeded runs of one mode, classified into an outcome table.
 *
 *  - free: real worker threads (`dirtyring run`), each run a generated configuration with
 *    random perturbation; run i uses seed `seed + i`, which fixes its configuration and
 *    perturbation (the interleaving is the machine's).
 *  - controlled: micro-runs under the controlled scheduler, each run as the chosen strategy
 *    plans it (strategies.ts): random and pct give run i seed `seed + i` for its scenario and
 *    its choices, so it is reproducible exactly; dfs explores the schedules of one scenario.
 *
 * `shard k/n` keeps the runs whose index is k − 1 modulo n, so n machines split one campaign.
 * A failing controlled run is run a second time (a determinism self-check), written to a
 * schedule file, and shrunk. A mutant campaign stops at its first forbidden run.
 */
import { now } from '../base/clock.js';
import type { SpawnVcpuWorker } from '../userspace/vcpu-worker-api.js';
import { VcpuWorkerPool } from '../userspace/vcpu-worker-pool.js';
import { type CampaignSpec, checkCampaignSpec, expectedRuns, inShard, runSeed } from './campaign-spec.js';
import { ControlledCampaignRuns } from './controlled/controlled-campaign.js';
import type { SpawnControlledWorker } from './controlled/participant-api.js';
import type { SpawnHarvesterThread } from '../harvester/thread-layout.js';
import { ParticipantPool } from './controlled/pool.js';
import { type CampaignResult, CampaignTally } from './campaign-tally.js';
import { FreeCampaignRuns } from './free/free-campaign.js';
import type { CampaignRuns, RunRecord } from './run-record.js';
import { finishWithin } from './stop.js';

export type { CampaignResult } from './campaign-tally.js';

export interface StressPlatform {
  readonly spawnVcpu: SpawnVcpuWorker;
  readonly spawnControlled: SpawnControlledWorker;
  /** The threads of a user harvester with threads of its own (free runs). */
  readonly spawnHarvester?: SpawnHarvesterThread;
}

export type RunListener = (record: RunRecord, done: number, expected: number | null) => void;

/** Owns the worker pools, so that several campaigns (e.g. one per mutant) share them. */
export class StressHarness {
  private vcpuPool: VcpuWorkerPool | null = null;
  private controlledPool: ParticipantPool | null = null;

  constructor(private readonly platform: StressPlatform) {}

  get participants(): ParticipantPool {
    this.controlledPool ??= new ParticipantPool(this.platform.spawnControlled);
    return this.controlledPool;
  }

  /** A vCPU worker spawner backed by the pool (free runs). */
  get vcpuSpawn(): SpawnVcpuWorker {
    this.vcpuPool ??= new VcpuWorkerPool(this.platform.spawnVcpu);
    return this.vcpuPool.spawn;
  }

  async close(): Promise<void> {
    await this.vcpuPool?.close();
    await this.controlledPool?.close();
    this.vcpuPool = null;
    this.controlledPool = null;
  }

  /**
   * The campaign's runs, one after another. Once `stop` fires no new run starts, and the run
   * under way gets STOP_GRACE_MS to end; the result then says it was interrupted.
   */
  async runCampaign(spec: CampaignSpec, onRun?: RunListener, stop?: AbortSignal): Promise<CampaignResult> {
    checkCampaignSpec(spec);
    const t0 = now();
    const runs: CampaignRuns = spec.mode === 'free' ? new FreeCampaignRuns(spec, this.vcpuSpawn, this.platform.spawnHarvester ?? null) : new ControlledCampaignRuns(spec, this.participants);
    const tally = new CampaignTally({
      mode: spec.mode,
      strategy: spec.mode === 'controlled' ? spec.strategy : null,
      mutant: spec.mutant?.name ?? null,
      seed: spec.seed,
      shard: spec.shard,
    });
    const expected = expectedRuns(spec);
    for (let i = 0; spec.runs === null || i < spec.runs; i++) {
      if (stop?.aborted === true) {
        tally.interrupted = true;
        break;
      }
      // The budget is judged once a run is made: a campaign of no run would report OK having tested nothing.
      if (spec.timeBudgetMs !== null && tally.records.length > 0 && now() - t0 >= spec.timeBudgetMs) break;
      if (!inShard(spec, i)) continue;
      const record = await finishWithin(runs.run(i, runSeed(spec, i)), stop);
      if (record === 'abandoned') {
        tally.interrupted = true;
        tally.abandonedRun = i;
        break;
      }
      if (record === null) break;
      tally.add(record);
      onRun?.(record, tally.records.length, expected);
      if (spec.stopAtFirstForbidden && tally.caughtAtRun !== null) break;
    }
    return tally.result(runs.exploration(), Math.round(now() - t0));
  }
}

