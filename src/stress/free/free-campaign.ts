/**
 * The runs of a free-running campaign: run i is `dirtyring run` with the configuration and
 * perturbation generated from its seed, on real worker threads; a failing run's seed and
 * scenario go to a trace file (the same seed reruns the same configuration, not the same
 * interleaving).
 */
// Namespace imports, used only for trace file paths: the browser app loads this module (Vite
// stubs node: modules there, and a named import of the stub fails when the module loads).
import * as path from 'node:path';
import { now } from '../../base/clock.js';
import type { RunSummary } from '../../harness/run.js';
import type { SpawnVcpuWorker } from '../../userspace/vcpu-worker-api.js';
import type { CampaignSpec, UserHarvesterRef } from '../campaign-spec.js';
import { isFailing, outcomeClass, primaryOutcome } from '../outcome.js';
import { type CampaignRuns, type RunRecord, mutantTag } from '../run-record.js';
import { freeTraceFile, writeJsonFile } from '../schedule-file.js';
import { runFreeScenario } from './free-run.js';
import { harvesterAt } from '../harvester-source.js';
import { withHarvesterThreads } from '../../harvester/harvester-threads.js';
import type { SpawnHarvesterThread } from '../../harvester/thread-layout.js';
import { type FreeRequest, describeFreeScenario, generateFreeScenario } from './free-scenario.js';

export class FreeCampaignRuns implements CampaignRuns {
  private readonly request: FreeRequest;
  private readonly mutants: number;

  constructor(
    private readonly spec: CampaignSpec,
    private readonly spawn: SpawnVcpuWorker,
    private readonly spawnHarvester: SpawnHarvesterThread | null = null,
  ) {
    const base: FreeRequest = spec.mutant?.free ?? {};
    const user = spec.userHarvester;
    // A user's harvester takes the standard harvester's place, with its own log mode.
    const log = user?.log ?? spec.log;
    // A user's harvester is the rings' only reaper (the hand-off design); else --self-reap or drawn.
    const selfReap = user !== null ? false : (spec.selfReap ?? undefined);
    const memoryMiB = spec.memoryMiB ?? undefined;
    this.request = {
      ...base,
      ...(log !== null && { log }),
      ...(user !== null && { harvester: 'standard' as const }),
      ...(selfReap !== undefined && { selfReap }),
      ...(memoryMiB !== undefined && { memoryMiB }),
    };
    this.mutants = spec.mutant?.bit ?? 0;
  }

  exploration(): null {
    return null;
  }

  async run(index: number, seed: number): Promise<RunRecord> {
    const scenario = generateFreeScenario(seed, this.request);
    const t0 = now();
    const ref = this.spec.userHarvester;
    const user = ref === null ? undefined : { definition: withHarvesterThreads(await harvesterAt(ref.url), freeThreads(ref, this.spawnHarvester)), source: { url: ref.url, spawn: this.spawnHarvester } };
    const r = await runFreeScenario(scenario, this.mutants, this.spawn, user);
    const outcomes = r.outcomes;
    const outcome = primaryOutcome(outcomes);
    let traceFile: string | null = null;
    if (isFailing(outcomes) && this.spec.traceDir !== null) {
      traceFile = path.join(this.spec.traceDir, `free-${mutantTag(this.spec.mutant)}-seed${seed}.json`);
      writeJsonFile(traceFile, freeTraceFile(scenario, this.mutants, outcome, outcomes, r.summary));
    }
    // The record has the seed already.
    const { seed: _seed, ...config } = scenario;
    return {
      index,
      seed,
      mode: 'free',
      strategy: null,
      mutant: this.spec.mutant?.name ?? null,
      config: describeFreeScenario(scenario, ref?.url),
      scenario: config,
      outcome,
      cls: outcomeClass(outcome),
      outcomes,
      elapsedMs: Math.round(now() - t0),
      steps: null,
      traceHash: null,
      deterministic: null,
      schedule: null,
      detail: freeDetail(r.summary),
      traceFile,
      shrunk: null,
      coverage: r.coverage,
    };
  }
}

/** A free run's first finding in words. */
export function freeDetail(s: RunSummary): string | null {
  const lost = s.lost[0];
  if (lost !== undefined) {
    return `${lost.reason === 'wrong-value' ? 'wrong value' : 'lost page'}: slot ${lost.slot} offset ${lost.offset}, written by vCPU ${lost.vcpu} in iteration ${lost.iteration}`;
  }
  if (s.mismatches[0] !== undefined) return `copy mismatch: slot ${s.mismatches[0].slot} offset ${s.mismatches[0].offset}`;
  if (s.error !== null) return s.error;
  if (s.kernelBugs > 0) return `${s.kernelBugs} kernel bug(s): an out-of-bounds rmap access in reset`;
  if (s.kernelWarnings > 0) return `${s.kernelWarnings} kernel warning(s)`;
  if (s.resetMismatches > 0) return `${s.resetMismatches} reset count mismatch(es)`;
  if (s.badEntries > 0) return `${s.badEntries} bad record(s)`;
  return null;
}

/**
 * Where a free run puts the user's harvester: as asked (0: the harness's thread); unsaid, on
 * threads of its own — one for a harvester that asks for none. Nothing bounds a collect()
 * that never returns on the harness's thread; on a thread of its own it is stopped after a
 * bound (threaded-collector.ts), and its reports are copied as they are made, as here.
 */
function freeThreads(ref: UserHarvesterRef, spawn: SpawnHarvesterThread | null): number | null {
  if (ref.threads !== null) return ref.threads;
  return spawn === null ? 0 : 1;
}
