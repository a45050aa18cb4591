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
import { type CampaignSpec, type Shard, checkCampaignSpec, expectedRuns, inShard, runSeed } from './campaign-spec.js';
import { ControlledCampaignRuns } from './controlled/controlled-campaign.js';
import type { SpawnControlledWorker } from './controlled/participant-api.js';
import type { SpawnHarvesterThread } from '../harvester/thread-layout.js';
import { ParticipantPool } from './controlled/pool.js';
import type { Exploration, Strategy } from './controlled/strategies.js';
import { type CampaignCoverage, CoverageTally } from './coverage/campaign-coverage.js';
import { FreeCampaignRuns } from './free/free-campaign.js';
import { type OutcomeClass, type OutcomeRow, OutcomeTable, isForbidden } from './outcome.js';
import type { CampaignRuns, RunRecord } from './run-record.js';
import type { StressMode } from './stress-mode.js';

export interface CampaignResult {
  readonly mode: StressMode;
  readonly strategy: Strategy | null;
  readonly mutant: string | null;
  readonly seed: number;
  readonly shard: Shard | null;
  readonly runs: number;
  readonly table: OutcomeRow[];
  readonly classes: Record<OutcomeClass, number>;
  readonly records: RunRecord[];
  /** A forbidden outcome was seen (for a mutant: it was caught). */
  readonly caught: boolean;
  /** Runs executed when the first forbidden outcome was seen (1-based). */
  readonly caughtAtRun: number | null;
  /** What the strategy explored (dfs: schedules, and whether the bounded tree was exhausted). */
  readonly dfs: Exploration | null;
  /** The edge states the runs reached. */
  readonly coverage: CampaignCoverage;
  readonly elapsedMs: number;
}

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

  async runCampaign(spec: CampaignSpec, onRun?: RunListener): Promise<CampaignResult> {
    checkCampaignSpec(spec);
    const t0 = now();
    const runs: CampaignRuns = spec.mode === 'free' ? new FreeCampaignRuns(spec, this.vcpuSpawn, this.platform.spawnHarvester ?? null) : new ControlledCampaignRuns(spec, this.participants);
    const tally = new CampaignTally(spec);
    const expected = expectedRuns(spec);
    for (let i = 0; spec.runs === null || i < spec.runs; i++) {
      if (spec.timeBudgetMs !== null && now() - t0 >= spec.timeBudgetMs) break;
      if (!inShard(spec, i)) continue;
      const record = await runs.run(i, runSeed(spec, i));
      if (record === null) break;
      tally.add(record);
      onRun?.(record, tally.records.length, expected);
      if (spec.stopAtFirstForbidden && tally.caughtAtRun !== null) break;
    }
    return tally.result(runs.exploration(), Math.round(now() - t0));
  }
}

/** A campaign's records, counted into its outcome table as they come. */
class CampaignTally {
  readonly records: RunRecord[] = [];
  private readonly table = new OutcomeTable();
  private readonly coverage: CoverageTally;
  /** Runs made when the first forbidden outcome was seen (1-based). */
  caughtAtRun: number | null = null;

  constructor(private readonly spec: CampaignSpec) {
    this.coverage = new CoverageTally(spec.mode);
  }

  add(record: RunRecord): void {
    this.records.push(record);
    this.coverage.add(record.coverage);
    this.table.add(record.outcomes, record.seed);
    if (this.caughtAtRun === null && isForbidden(record.outcomes)) this.caughtAtRun = this.records.length;
  }

  result(exploration: Exploration | null, elapsedMs: number): CampaignResult {
    const { spec, table } = this;
    return {
      mode: spec.mode,
      strategy: spec.mode === 'controlled' ? spec.strategy : null,
      mutant: spec.mutant?.name ?? null,
      seed: spec.seed,
      shard: spec.shard,
      runs: this.records.length,
      table: table.rows(),
      classes: {
        acceptable: table.byClass('acceptable'),
        interesting: table.byClass('interesting'),
        forbidden: table.byClass('forbidden'),
        error: table.byClass('error'),
      },
      records: this.records,
      caught: this.caughtAtRun !== null,
      caughtAtRun: this.caughtAtRun,
      dfs: exploration,
      coverage: this.coverage.result(),
      elapsedMs,
    };
  }
}
