/**
 * A free-running stress scenario: one `dirtyring run` (real worker threads) with a seeded
 * configuration and seeded perturbation — delays at the step points of the vCPU workers and of
 * userspace, forced early harvests and kicks at random polls. The seed fixes all of it; the
 * threads' interleaving is the only thing left to the machine.
 */
import { Step } from '../../kernel/step-hook.js';
import type { RunConfig } from '../../harness/run-config.js';
import { Prng, deriveSeed } from '../../base/prng.js';
import { WORKLOAD_KINDS } from '../../guest/workloads.js';
import { type HarvesterVariant, harvesterLogMode } from '../harvesters/harvester-variants.js';
import type { LogMode } from '../../userspace/log-collectors.js';
import type { StepPerturbation } from '../harvesters/step-perturbation.js';
import { pickHarvester } from '../harvesters/harvester-pick.js';

export interface FreeScenario {
  readonly seed: number;
  /** The run's configuration (complete: no defaults left to chance). */
  readonly config: Partial<RunConfig> & { readonly seed: number; readonly log: LogMode; readonly vcpus: number };
  readonly harvester: HarvesterVariant;
  /** Delays in every vCPU worker (null: none). */
  readonly vcpuPerturbation: StepPerturbation | null;
  /** Delays in userspace's own thread (harvest, reset, flush wait, copy). */
  readonly userPerturbation: StepPerturbation | null;
  /** Chance per poll (about every ms) of a collection before its time, percent. */
  readonly forcedHarvestPercent: number;
  /** Chance per poll of kicking a random vCPU out of guest mode, percent. */
  readonly kickPercent: number;
}

/** Constraints a campaign (e.g. a mutant's) puts on generated scenarios. */
export interface FreeRequest {
  readonly log?: LogMode;
  readonly harvester?: HarvesterVariant;
  /** Ring sizes to pick from (log ring). */
  readonly ringEntries?: readonly number[];
  /** Write-track this many guest pages (a shadow page table kept in sync by notifiers). */
  readonly track?: { readonly pages: number };
  /** Guest memory sizes to pick from, in MiB. */
  readonly memoryMiB?: readonly number[];
  /** Iteration counts to pick from. */
  readonly iterations?: readonly number[];
}

/** Step points a vCPU thread reaches, and those userspace's thread reaches. */
const VCPU_POINTS = [
  Step.INSN_BOUNDARY,
  Step.GUEST_STORE,
  Step.FAULT_MAKE_WRITABLE,
  Step.FAULT_MARK_DIRTY,
  Step.PUSH_PUBLISH,
  Step.PUSH_ADVANCE,
  Step.GUEST_ENTRY,
  Step.BITMAP_UPDATE,
];
const USER_POINTS = [Step.HARVEST_ENTRY, Step.RESET_ENTRY, Step.RESET_REPROTECT, Step.TLB_FLUSH_WAIT, Step.USER_READ_PAGE, Step.BITMAP_UPDATE];

function perturbation(rng: Prng, points: readonly number[], seed: number): StepPerturbation {
  let mask = 0;
  // Each point is perturbed in half of the runs: different runs widen different windows.
  for (const p of points) if (rng.below(2) === 0) mask |= 1 << p;
  if (mask === 0) mask = 1 << points[rng.below(points.length)]!;
  return {
    seed,
    points: mask,
    chance: 64 + rng.below(1248), // 0.1 % .. 2 % of the hits
    maxDelayUs: 20 + rng.below(400),
    yieldPercent: rng.below(51),
  };
}

export function generateFreeScenario(seed: number, req: FreeRequest = {}): FreeScenario {
  const rng = new Prng(deriveSeed(seed, 0xf7ee));
  const forcedLog = req.harvester ? harvesterLogMode(req.harvester) : null;
  const log = req.log ?? forcedLog ?? rng.weighted<LogMode>([['ring', 50], ['bitmap', 25], ['clear', 25]]);
  const harvester: HarvesterVariant = req.harvester ?? pickHarvester(rng, log, 10);
  const vcpus = rng.weighted([[1, 20], [2, 40], [3, 20], [4, 20]]);
  const memoryMiB = req.memoryMiB
    ? req.memoryMiB[rng.below(req.memoryMiB.length)]!
    : rng.weighted([[1, 30], [2, 35], [4, 25], [8, 10]]);
  const memoryBytes = memoryMiB * 1024 * 1024;
  // Page write-tracking when asked, and in some other runs (never with DMA devices: their
  // writes are not emulated, so no notifier could see them and the run refuses the pair).
  const trackPages = req.track ? req.track.pages : rng.below(100) < 15 ? 16 + rng.below(113) : 0;
  const deviceWriters = trackPages === 0 && harvester !== 'hostile-wrap' && rng.below(100) < 10 ? 1 : 0;
  const config: FreeScenario['config'] = {
    seed,
    log,
    vcpus,
    memoryBytes,
    memslots: rng.weighted([[1, 70], [2, 20], [3, 10]]),
    iterations: req.iterations ? req.iterations[rng.below(req.iterations.length)]! : 2 + rng.below(3),
    intervalMs: 5 + rng.below(11),
    harvestIntervalMs: 1 + rng.below(5),
    workload: WORKLOAD_KINDS[rng.below(WORKLOAD_KINDS.length)]!,
    burstPages: 1 + rng.below(16),
    burstPercent: rng.below(11),
    writesPerIteration: rng.below(100) < 20 ? 500 + rng.below(4501) : 0,
    emulateAllStores: rng.below(100) < 10,
    deviceWriters,
    ...(trackPages > 0 ? { trackPages: Math.min(trackPages, memoryBytes / 4096) } : {}),
    ...(log === 'ring' ? { ringEntries: req.ringEntries ? req.ringEntries[rng.below(req.ringEntries.length)]! : rng.weighted([[256, 30], [512, 25], [1024, 20], [4096, 25]]) } : {}),
    ...(log === 'clear' ? { clearChunkPages: 64 * rng.weighted([[1, 30], [2, 30], [4, 20], [16, 20]]), initiallySet: rng.below(100) < 20 } : {}),
  };
  const perturbed = rng.below(100) < 80;
  return {
    seed,
    config,
    harvester,
    vcpuPerturbation: perturbed ? perturbation(rng, VCPU_POINTS, deriveSeed(seed, 0x9c)) : null,
    userPerturbation: perturbed && rng.below(2) === 0 ? perturbation(rng, USER_POINTS, deriveSeed(seed, 0x0c)) : null,
    forcedHarvestPercent: rng.below(21),
    kickPercent: rng.below(11),
  };
}

/** One line: `ring/standard 2 vCPUs 4MiB 1024 entries, random, 3 iterations, perturbed`. */
export function describeFreeScenario(s: FreeScenario): string {
  const c = s.config;
  const mib = (c.memoryBytes ?? 0) / 1024 / 1024;
  return (
    `${c.log}/${s.harvester} ${c.vcpus} vCPU${c.vcpus === 1 ? '' : 's'} ${mib}MiB` +
    `${c.ringEntries !== undefined ? ` ${c.ringEntries} entries` : ''}, ${c.workload}${c.emulateAllStores ? ' emulated' : ''}, ` +
    `${c.iterations} iterations${c.deviceWriters ? ', DMA' : ''}${c.trackPages ? `, ${c.trackPages} tracked pages` : ''}` +
    `${s.vcpuPerturbation || s.userPerturbation ? ', perturbed' : ''}`
  );
}
