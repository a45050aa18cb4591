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
import { CLEAR_ALIGN_PAGES } from '../harvesters/unaligned-clear-collector.js';
import { PAGE_SIZE } from '../../abi/constants.js';
import { MAX_SLOT_BYTES } from '../../userspace/guest-shape.js';
import { TRACK_RING_MIN_ENTRIES } from '../../pagetrack/notification-ring.js';
import { between, percent, pick } from '../draw.js';

const MiB = 1024 * 1024;

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
  /** Entries of the page-track notification rings (with `track`). */
  readonly trackRingEntries?: number;
  /**
   * Ring runs of the standard harvester: the self-reap design (true), the hand-off (false), or
   * drawn (unset). Other harvesters are userspace's only reaper: always the hand-off.
   */
  readonly selfReap?: boolean;
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

/**
 * Independent streams derived from a run's seed (the configuration's, each thread's delays, and
 * the structures' edges: drawn apart so that adding them left every other draw of a seed as it was).
 */
const STREAM = { config: 0xf7ee, vcpuDelays: 0x9c, userDelays: 0x0c, edges: 0xed9e, design: 0x5e1f } as const;

/** Ring runs of the standard harvester that self-reap when the campaign leaves it to the draw. */
const SELF_REAP_PERCENT = 50;

/**
 * The edges of free runs: guest memory a few pages past whole MiB (memslots whose size is no
 * multiple of 64: a short last bitmap word), SMRAM in address space 1 (a VM with SMM), and the
 * smallest notification ring for page tracking (so that it fills and the vCPU exits).
 */
const EDGE_DRAW = { oddMemoryPercent: 50, maxExtraPages: 63, smmPercent: 20, maxSmmPages: 128, smallTrackRingPercent: 50 } as const;

/**
 * The largest guest a free run may be asked for (FreeRequest.memoryMiB), in MiB: the run may
 * draw a single memslot for all of it, at most MAX_SLOT_BYTES, with up to
 * EDGE_DRAW.maxExtraPages pages added.
 */
export const MAX_FREE_MEMORY_MIB = Math.floor((MAX_SLOT_BYTES - EDGE_DRAW.maxExtraPages * PAGE_SIZE) / MiB);

/** Each point is perturbed in half of the runs: different runs widen different windows. */
const POINT_PERTURBED_ONE_IN = 2;
/** Chance per hit, in 1/65536 (StepPerturbation.chance): 64..1311, about 0.1 % to 2 % of the hits. */
const MIN_CHANCE = 64;
const MAX_CHANCE = 1311;
const MIN_DELAY_US = 20;
const MAX_DELAY_US = 419;
const MAX_YIELD_PERCENT = 50;

/**
 * The configurations free runs are drawn from: [value, weight] lists and percentages. Small
 * guests and rings, so that rings fill and pages collide within a run of a few iterations.
 */
const DRAW = {
  logWeights: [['ring', 50], ['bitmap', 25], ['clear', 25]] as readonly (readonly [LogMode, number])[],
  hostileWrapPercent: 10,
  vcpuWeights: [[1, 20], [2, 40], [3, 20], [4, 20]] as const,
  memoryMiBWeights: [[1, 30], [2, 35], [4, 25], [8, 10]] as const,
  /** Runs that write-track some pages unasked, and how many pages (16..128). */
  trackPercent: 15,
  minTrackPages: 16,
  maxTrackPages: 128,
  deviceWriterPercent: 10,
  memslotWeights: [[1, 70], [2, 20], [3, 10]] as const,
  minIterations: 2,
  maxIterations: 4,
  minIntervalMs: 5,
  maxIntervalMs: 15,
  minHarvestIntervalMs: 1,
  maxHarvestIntervalMs: 5,
  maxBurstPages: 16,
  maxBurstPercent: 10,
  /** Runs with a fixed number of writes per iteration (500..5000), the others time-bound. */
  fixedWritesPercent: 20,
  minWrites: 500,
  maxWrites: 5000,
  emulatedPercent: 10,
  ringEntryWeights: [[256, 30], [512, 25], [1024, 20], [4096, 25]] as const,
  /** CLEAR chunks in units of 64 pages. */
  clearChunkUnitWeights: [[1, 30], [2, 30], [4, 20], [16, 20]] as const,
  initiallySetPercent: 20,
  perturbedPercent: 80,
  userPerturbedOneIn: 2,
  maxForcedHarvestPercent: 20,
  maxKickPercent: 10,
} as const;

function perturbation(rng: Prng, points: readonly number[], seed: number): StepPerturbation {
  let mask = 0;
  for (const p of points) if (rng.below(POINT_PERTURBED_ONE_IN) === 0) mask |= 1 << p;
  if (mask === 0) mask = 1 << pick(rng, points);
  return {
    seed,
    points: mask,
    chance: between(rng, MIN_CHANCE, MAX_CHANCE),
    maxDelayUs: between(rng, MIN_DELAY_US, MAX_DELAY_US),
    yieldPercent: between(rng, 0, MAX_YIELD_PERCENT),
  };
}

export function generateFreeScenario(seed: number, req: FreeRequest = {}): FreeScenario {
  const rng = new Prng(deriveSeed(seed, STREAM.config));
  const forcedLog = req.harvester ? harvesterLogMode(req.harvester) : null;
  const log = req.log ?? forcedLog ?? rng.weighted(DRAW.logWeights);
  const harvester: HarvesterVariant = req.harvester ?? pickHarvester(rng, log, DRAW.hostileWrapPercent);
  const edged = edgeConfig(new Prng(deriveSeed(seed, STREAM.edges)), runConfig(rng, seed, log, harvester, req), req);
  const config = { ...edged, selfReap: drawSelfReap(new Prng(deriveSeed(seed, STREAM.design)), log, harvester, req) };
  const perturbed = percent(rng, DRAW.perturbedPercent);
  return {
    seed,
    config,
    harvester,
    vcpuPerturbation: perturbed ? perturbation(rng, VCPU_POINTS, deriveSeed(seed, STREAM.vcpuDelays)) : null,
    userPerturbation: perturbed && rng.below(DRAW.userPerturbedOneIn) === 0 ? perturbation(rng, USER_POINTS, deriveSeed(seed, STREAM.userDelays)) : null,
    forcedHarvestPercent: between(rng, 0, DRAW.maxForcedHarvestPercent),
    kickPercent: between(rng, 0, DRAW.maxKickPercent),
  };
}

/** The run's configuration; every field drawn here, in this order (a seed must keep its run). */
function runConfig(rng: Prng, seed: number, log: LogMode, harvester: HarvesterVariant, req: FreeRequest): FreeScenario['config'] {
  const vcpus = rng.weighted(DRAW.vcpuWeights);
  const memoryMiB = req.memoryMiB ? pick(rng, req.memoryMiB) : rng.weighted(DRAW.memoryMiBWeights);
  const memoryBytes = memoryMiB * MiB;
  // Page write-tracking when asked, and in some other runs (never with DMA devices: their
  // writes are not emulated, so no notifier could see them and the run refuses the pair).
  const trackPages = req.track ? req.track.pages : percent(rng, DRAW.trackPercent) ? between(rng, DRAW.minTrackPages, DRAW.maxTrackPages) : 0;
  const deviceWriters = trackPages === 0 && harvester !== 'hostile-wrap' && percent(rng, DRAW.deviceWriterPercent) ? 1 : 0;
  return {
    seed,
    log,
    vcpus,
    memoryBytes,
    memslots: rng.weighted(DRAW.memslotWeights),
    iterations: req.iterations ? pick(rng, req.iterations) : between(rng, DRAW.minIterations, DRAW.maxIterations),
    intervalMs: between(rng, DRAW.minIntervalMs, DRAW.maxIntervalMs),
    harvestIntervalMs: between(rng, DRAW.minHarvestIntervalMs, DRAW.maxHarvestIntervalMs),
    workload: pick(rng, WORKLOAD_KINDS),
    burstPages: between(rng, 1, DRAW.maxBurstPages),
    burstPercent: between(rng, 0, DRAW.maxBurstPercent),
    writesPerIteration: percent(rng, DRAW.fixedWritesPercent) ? between(rng, DRAW.minWrites, DRAW.maxWrites) : 0,
    emulateAllStores: percent(rng, DRAW.emulatedPercent),
    deviceWriters,
    ...(trackPages > 0 ? { trackPages: Math.min(trackPages, memoryBytes / PAGE_SIZE) } : {}),
    ...(log === 'ring' ? { ringEntries: req.ringEntries ? pick(rng, req.ringEntries) : rng.weighted(DRAW.ringEntryWeights) } : {}),
    ...(log === 'clear'
      ? { clearChunkPages: CLEAR_ALIGN_PAGES * rng.weighted(DRAW.clearChunkUnitWeights), initiallySet: percent(rng, DRAW.initiallySetPercent) }
      : {}),
  };
}

/** The run's configuration at the structures' edges (EDGE_DRAW), drawn from their own stream. */
function edgeConfig(rng: Prng, c: FreeScenario['config'], req: FreeRequest): FreeScenario['config'] {
  const extraPages = percent(rng, EDGE_DRAW.oddMemoryPercent) ? between(rng, 1, EDGE_DRAW.maxExtraPages) : 0;
  const smmPages = percent(rng, EDGE_DRAW.smmPercent) ? between(rng, 1, EDGE_DRAW.maxSmmPages) : 0;
  const smallTrackRing = percent(rng, EDGE_DRAW.smallTrackRingPercent);
  const trackRingEntries = req.trackRingEntries ?? (smallTrackRing ? TRACK_RING_MIN_ENTRIES : undefined);
  return {
    ...c,
    memoryBytes: (c.memoryBytes ?? 0) + extraPages * PAGE_SIZE,
    ...(smmPages > 0 && { smmPages }),
    ...((c.trackPages ?? 0) > 0 && trackRingEntries !== undefined && { trackRingEntries }),
  };
}

/**
 * The reaction to exit 31, from its own stream: only a ring run of the standard harvester can
 * self-reap (its collector drains the shared reaper); the variants reap in userspace alone.
 */
function drawSelfReap(rng: Prng, log: LogMode, harvester: HarvesterVariant, req: FreeRequest): boolean {
  if (log !== 'ring' || harvester !== 'standard') return false;
  return req.selfReap ?? percent(rng, SELF_REAP_PERCENT);
}

/** One line: `ring/standard 2 vCPUs 4MiB 1024 entries, random, 3 iterations, perturbed`. */
export function describeFreeScenario(s: FreeScenario, userHarvester?: string): string {
  const c = s.config;
  const mib = Math.floor((c.memoryBytes ?? 0) / MiB);
  const extra = ((c.memoryBytes ?? 0) % MiB) / PAGE_SIZE;
  return (
    `${c.log}/${userHarvester !== undefined ? `user:${userHarvester.slice(userHarvester.lastIndexOf('/') + 1)}` : s.harvester}${c.selfReap === true ? '+self-reap' : ''} ${c.vcpus} vCPU${c.vcpus === 1 ? '' : 's'} ${mib}MiB${extra > 0 ? `+${extra}p` : ''}` +
    `${c.memslots !== undefined && c.memslots > 1 ? ` in ${c.memslots} slots` : ''}${c.smmPages ? ` + ${c.smmPages}p SMRAM` : ''}` +
    `${c.ringEntries !== undefined ? ` ${c.ringEntries} entries` : ''}, ${c.workload}${c.emulateAllStores ? ' emulated' : ''}, ` +
    `${c.iterations} iterations${c.deviceWriters ? ', DMA' : ''}${c.trackPages ? `, ${c.trackPages} tracked pages${c.trackRingEntries ? ` (${c.trackRingEntries}-entry rings)` : ''}` : ''}` +
    `${s.vcpuPerturbation || s.userPerturbation ? ', perturbed' : ''}`
  );
}
