/**
 * A stress campaign for a page: seeded runs, controlled (micro-runs under the controlled
 * scheduler) or free (`dirtyring run`s of generated configurations on real worker threads),
 * each run's outcomes added to a shared histogram as it ends (outcome-histogram.ts), stopping
 * when the runs are done, when the reader asks, or (hunting a mutant) at the first forbidden
 * run. No trace files, no shrinking: the page shows the histogram and the first failing run.
 */
import { ConfigError } from '../base/config-error.js';
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import type { SpawnHarvesterThread } from '../harvester/thread-layout.js';
import type { LogMode } from '../userspace/log-collectors.js';
import type { SpawnVcpuWorker } from '../userspace/vcpu-worker-api.js';
import type { StressMode } from './stress-mode.js';
import { StressHarness } from './campaign.js';
import { type UserHarvesterRef, campaignMemoryModel, campaignSpec, checkCampaignSpec } from './campaign-spec.js';
import type { SpawnControlledWorker } from './controlled/participant-api.js';
import { mutantProfile } from './mutant-catalog.js';
import { addRun, stopRequested } from './outcome-histogram.js';
import { isFailing, isForbidden } from './outcome.js';

export interface PageCampaignRequest {
  readonly mode: StressMode;
  readonly runs: number;
  readonly seed: number;
  /** A mutant's CLI name, or '' for none. */
  readonly mutant: string;
  /** Controlled runs only: free runs are the hardware's (sc here). */
  readonly memoryModel: MemoryModel;
  readonly log: LogMode | null;
  /**
   * A user's harvester in the collector's place (its URL is one the campaign's threads can
   * resolve: harvester-source.ts); absent or null: the built-in collectors.
   */
  readonly userHarvester?: UserHarvesterRef | null;
}

/** Where the campaign's threads come from: the controlled participants, the free runs' vCPUs and harvester threads. */
export interface PageCampaignPlatform {
  readonly spawnControlled: SpawnControlledWorker;
  readonly spawnVcpu: SpawnVcpuWorker;
  /** The threads of a user harvester with threads of its own, in free runs (absent: none can start). */
  readonly spawnHarvester?: SpawnHarvesterThread;
}

/** A failing run: its seed, outcomes, what it found and its configuration. */
export interface FailedRun {
  readonly seed: number;
  readonly outcomes: string[];
  readonly detail: string | null;
  readonly config: string;
}

export interface PageCampaignResult {
  readonly mode: StressMode;
  readonly runs: number;
  readonly forbidden: number;
  /** The first forbidden run: its seed, outcomes and what it found. */
  readonly firstForbidden: FailedRun | null;
  /** The first run that failed without a verdict (an error outcome: a harvester that threw, a worker that died), when no run was forbidden. */
  readonly firstError: FailedRun | null;
  readonly memoryModel: MemoryModel;
  readonly elapsedMs: number;
  /** The user's harvester the runs used (its name, log mode and threads of its own: 0 for none), or null for the built-in collectors. */
  readonly harvester: { readonly name: string; readonly log: LogMode; readonly threads: number } | null;
}

const MAX_PAGE_RUNS = 100_000;

export async function runPageCampaign(req: PageCampaignRequest, histogram: SharedArrayBuffer, platform: PageCampaignPlatform): Promise<PageCampaignResult> {
  if (req.mode !== 'controlled' && req.mode !== 'free') throw new ConfigError('--mode', String(req.mode), 'EINVAL', 'must be controlled or free');
  if (!Number.isInteger(req.runs) || req.runs < 1 || req.runs > MAX_PAGE_RUNS) throw new ConfigError('--runs', String(req.runs), 'EINVAL', `must be an integer in 1..${MAX_PAGE_RUNS}`);
  const mutant = req.mutant === '' ? null : (mutantProfile(req.mutant) ?? null);
  if (req.mutant !== '' && mutant === null) throw new ConfigError('--mutant', req.mutant, 'EINVAL', 'unknown mutant');
  const user = req.userHarvester ?? null;
  // As the CLI: a mutant campaign judges the built-in collectors.
  if (user !== null && mutant !== null) throw new ConfigError('--harvester', user.name, 'EINVAL', 'mutant campaigns judge the built-in collectors');
  const spec = campaignSpec(req.mode, { runs: req.runs, seed: req.seed >>> 0, mutant, memoryModel: req.memoryModel, log: req.log, stopAtFirstForbidden: mutant !== null, userHarvester: user });
  checkCampaignSpec(spec);
  const h = new Int32Array(histogram);
  const harness = new StressHarness(platform);
  let forbidden = 0;
  let firstForbidden: FailedRun | null = null;
  let firstError: FailedRun | null = null;
  try {
    const result = await harness.runCampaign(spec, (record) => {
      addRun(h, record.outcome);
      if (isForbidden(record.outcomes)) {
        forbidden++;
        firstForbidden ??= { seed: record.seed, outcomes: [...record.outcomes], detail: record.detail, config: record.config };
      } else if (isFailing(record.outcomes)) {
        firstError ??= { seed: record.seed, outcomes: [...record.outcomes], detail: record.detail, config: record.config };
      }
      // The page's stop ends the campaign after this run.
      if (stopRequested(h)) throw new CampaignStopped();
    }).catch((e: unknown) => {
      if (e instanceof CampaignStopped) return null;
      throw e;
    });
    return {
      mode: req.mode,
      runs: result?.runs ?? Atomics.load(h, 0),
      forbidden,
      firstForbidden,
      firstError: firstForbidden === null ? firstError : null,
      memoryModel: campaignMemoryModel(spec),
      elapsedMs: result?.elapsedMs ?? 0,
      harvester: user && { name: user.name, log: user.log, threads: user.threads ?? 0 },
    };
  } finally {
    await harness.close();
  }
}

/** Thrown from the run listener to end a campaign the page stopped. */
class CampaignStopped extends Error {}
