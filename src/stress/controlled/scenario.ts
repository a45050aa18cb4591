/**
 * A controlled run's scenario: a tiny VM and explicit guest programs, small enough to schedule
 * step by step and to shrink. Everything a run does is in here or in its choices, so a replay
 * file holds the scenario itself (not the seed that generated it).
 */
import { ConfigError } from '../../base/config-error.js';
import { validateRingEntries } from '../../harness/run-config.js';
import { type Prng } from '../../base/prng.js';
import { HARVESTER_VARIANTS, type HarvesterVariant, harvesterLogMode } from '../harvesters/harvester-variants.js';
import { LOG_MODES, type LogMode } from '../../userspace/log-collectors.js';
import { pickHarvester } from '../harvesters/harvester-pick.js';
import { CLEAR_ALIGN_PAGES } from '../harvesters/unaligned-clear-collector.js';
import { KVM_DIRTY_RING_MAX_ENTRIES } from '../../abi/constants.js';
import { between, percent } from '../draw.js';
import { type EdgesRequest, edgesParts } from './scenario-edges.js';
import { type ScenarioPlacement, slotLayout, validatePlacement } from './scenario-slots.js';
import type { Roster } from './control-steps.js';

export interface ControlledScenario extends ScenarioPlacement {
  readonly log: LogMode;
  readonly harvester: HarvesterVariant;
  readonly vcpus: number;
  /** Pages of the logged memslots (one, unless `slotPages` and `smmPages` say otherwise). */
  readonly pages: number;
  /** --log ring: entries per ring (256, the smallest the kernel accepts). */
  readonly ringEntries: number;
  /** --log clear: pages per CLEAR. */
  readonly clearChunkPages: number;
  /** Log every store (the instruction-emulator path) instead of the fault path. */
  readonly emulated: boolean;
  /** Collections userspace makes in each iteration, at moments the scheduler picks. */
  readonly collections: number;
  /**
   * Before the final sync, userspace waits until every vCPU has done all its stores of the
   * iteration (collecting for stalled ones). Without it, the final sync may cut them short.
   */
  readonly drain: boolean;
  /** stores[v][k]: the pages vCPU v stores to in iteration k + 1, in order. */
  readonly stores: readonly (readonly (readonly number[])[])[];
  /**
   * --log ring: the capability the ring is enabled with. Under a weak memory model it decides
   * the reset walk's orderings: `ring` (KVM_CAP_DIRTY_LOG_RING) is the pre-2022 kernel with
   * plain flags accesses, `ring-acqrel` (KVM_CAP_DIRTY_LOG_RING_ACQ_REL) acquires and releases.
   */
  readonly ringCap: RingCap;
  /**
   * --log ring: who calls KVM_RESET_DIRTY_RINGS. `inline`: the harvester, after its harvest;
   * `thread`: a second userspace thread (participant R), asked by the harvester, which keeps
   * harvesting while the reset runs — the situation of QEMU's 2022 fix.
   */
  readonly resetter: Resetter;
  /**
   * A user's harvester module (its file: URL) in the harvester's place (src/harvester/): the
   * participant worker loads it before the run.
   */
  readonly userHarvester?: string;
  /**
   * With a user harvester: the threads of its own it runs on (participants H0, H1, ..., each
   * serving every collection userspace asks for); absent, it runs in userspace (U).
   */
  readonly userHarvesterThreads?: number;
}

export const RING_CAPS = ['ring', 'ring-acqrel'] as const;
export type RingCap = (typeof RING_CAPS)[number];
export const RESETTERS = ['inline', 'thread'] as const;
export type Resetter = (typeof RESETTERS)[number];

export const SCENARIO_SHAPES = ['micro', 'sweep', 'flood', 'edges'] as const;
/**
 * micro: 1-3 vCPUs, a dozen pages, a few stores each; sweep: one vCPU faulting on 64-96
 * distinct pages (enough entries for once-in-61 bugs); flood: one vCPU on the emulated path
 * pushing 270-300 entries in one iteration (more than a 256-entry ring holds); edges: a
 * micro-run on the structures' edges (scenario-edges.ts).
 */
export type ScenarioShape = (typeof SCENARIO_SHAPES)[number];

/** Constraints a campaign (e.g. a mutant's) puts on generated scenarios; `slots`, `smm` and `lap` shape `edges` ones. */
export interface ScenarioRequest extends Pick<EdgesRequest, 'slots' | 'smm' | 'lap'> {
  readonly shape?: ScenarioShape;
  readonly log?: LogMode;
  readonly harvester?: HarvesterVariant;
  readonly vcpus?: number;
  readonly emulated?: boolean;
  readonly collections?: number;
  readonly drain?: boolean;
  /** micro: at most this many pages (fewer pages, more collisions between stores). */
  readonly maxPages?: number;
  readonly ringCap?: RingCap;
  readonly resetter?: Resetter;
}

/** The smallest ring the kernel accepts (one page of entries): the scenarios that overflow it stay short. */
const RING_ENTRIES = 256;
/** The smallest CLEAR chunk there is: a sweep's pages then span two chunks, and the collector's chunking is exercised. */
const CLEAR_CHUNK_PAGES = CLEAR_ALIGN_PAGES;

/** How often each shape is drawn: mostly micro-runs, where interleavings are varied and cheap. */
const SHAPE_WEIGHTS: readonly (readonly [ScenarioShape, number])[] = [['micro', 70], ['edges', 20], ['sweep', 5], ['flood', 5]];
/** The logging interface of a micro or sweep scenario (a flood needs a ring to overflow). */
const LOG_WEIGHTS: readonly (readonly [LogMode, number])[] = [['ring', 60], ['bitmap', 20], ['clear', 20]];
/** Percent of ring scenarios whose userspace is the hostile-wrap harvester. */
const HOSTILE_WRAP_PERCENT = 15;
/** Percent of ring scenarios with the standard harvester whose resets run on a thread of their own. */
const RESETTER_THREAD_PERCENT = 25;

/**
 * micro: few vCPUs, few pages, few stores, most of them to a handful of hot pages, so that
 * vCPUs collide on pages and the scheduler's choices decide who logs what first.
 */
const MICRO = {
  vcpuWeights: [[1, 35], [2, 45], [3, 20]] as readonly (readonly [number, number])[],
  maxVcpus: 3,
  minPages: 2,
  maxPages: 12,
  maxRounds: 3,
  maxHotPages: 4,
  maxStoresPerRound: 6,
  /** Percent of stores that go to a hot page. */
  hotStorePercent: 70,
  /** Percent of micro-runs on the emulated path (every store logged). */
  emulatedPercent: 15,
  maxCollections: 3,
} as const;
/** sweep: one vCPU faulting once on each of 64 to 96 distinct pages (past every 61st entry). */
const SWEEP = { minPages: 64, maxPages: 96, maxCollections: 2 } as const;
/** flood: one vCPU on the emulated path, 14 to 44 stores past a full ring, on a few pages. */
const FLOOD = { minPages: 2, maxPages: 8, minOverflow: 14, maxOverflow: 44 } as const;

/** What a shape decides; the log and the harvester are drawn before it. */
type ShapeParts = Pick<ControlledScenario, 'vcpus' | 'pages' | 'emulated' | 'collections' | 'drain' | keyof ScenarioPlacement> & { stores: number[][][] };

/** A scenario from `rng`, honouring `req`. */
export function generateScenario(rng: Prng, req: ScenarioRequest = {}): ControlledScenario {
  const shape = req.shape ?? rng.weighted(SHAPE_WEIGHTS);
  const forcedLog = req.harvester ? harvesterLogMode(req.harvester) : null;
  const log = req.log ?? forcedLog ?? (shape === 'flood' ? 'ring' : rng.weighted(LOG_WEIGHTS));
  const harvester = req.harvester ?? pickHarvester(rng, log, HOSTILE_WRAP_PERCENT);
  const parts = shapeParts(rng, shape, req, log);
  if (harvester === 'hostile-wrap' && parts.pages >= 2) {
    // Give every iteration two distinct pages per vCPU, so a final collection can hold a pair.
    for (const mine of parts.stores) {
      for (const list of mine) {
        if (new Set(list).size < 2) list.push(((list[0] ?? 0) + 1) % parts.pages);
      }
    }
  }
  const { vcpus, pages, emulated, collections, drain, stores, ...placement } = parts;
  // Drawn last, so that the rest of a seed's scenario is what it was before these fields existed.
  const ringCap = req.ringCap ?? (rng.below(2) === 0 ? 'ring-acqrel' : 'ring');
  const threadable = log === 'ring' && harvester === 'standard';
  const resetter = threadable ? (req.resetter ?? (percent(rng, RESETTER_THREAD_PERCENT) ? 'thread' : 'inline')) : 'inline';
  return {
    log,
    harvester,
    vcpus,
    pages,
    ringEntries: RING_ENTRIES,
    clearChunkPages: CLEAR_CHUNK_PAGES,
    emulated,
    collections,
    drain,
    stores,
    ...placement,
    ringCap,
    resetter,
  };
}

function shapeParts(rng: Prng, shape: ScenarioShape, req: ScenarioRequest, log: LogMode): ShapeParts {
  switch (shape) {
    case 'micro':
      return microParts(rng, req);
    case 'sweep':
      return sweepParts(rng, req);
    case 'flood':
      return floodParts(rng, req);
    case 'edges':
      return edgesParts(rng, req, log, RING_ENTRIES);
  }
}

function microParts(rng: Prng, req: ScenarioRequest): ShapeParts {
  // A reset thread asked for: the race it exists for needs vCPUs pushing while collections run.
  const resetThread = req.resetter === 'thread';
  const vcpus = req.vcpus ?? (resetThread ? MICRO.maxVcpus : rng.weighted(MICRO.vcpuWeights));
  const pages = between(rng, MICRO.minPages, Math.max(MICRO.minPages, Math.min(MICRO.maxPages, req.maxPages ?? MICRO.maxPages)));
  const rounds = between(rng, 1, MICRO.maxRounds);
  const hot = Array.from({ length: between(rng, 1, Math.min(pages, MICRO.maxHotPages)) }, () => rng.below(pages));
  const stores: number[][][] = [];
  for (let v = 0; v < vcpus; v++) {
    const mine: number[][] = [];
    for (let k = 0; k < rounds; k++) {
      const store = (): number => (percent(rng, MICRO.hotStorePercent) ? hot[rng.below(hot.length)]! : rng.below(pages));
      mine.push(Array.from({ length: between(rng, 1, MICRO.maxStoresPerRound) }, store));
    }
    stores.push(mine);
  }
  const emulated = req.emulated ?? percent(rng, MICRO.emulatedPercent);
  const collections = req.collections ?? (resetThread ? MICRO.maxCollections : between(rng, 0, MICRO.maxCollections));
  const drain = req.drain ?? rng.below(2) === 0;
  return { vcpus, pages, emulated, collections, drain, stores };
}

function sweepParts(rng: Prng, req: ScenarioRequest): ShapeParts {
  const vcpus = req.vcpus ?? 1;
  const pages = between(rng, SWEEP.minPages, SWEEP.maxPages);
  const stores: number[][][] = [];
  for (let v = 0; v < vcpus; v++) {
    // Every page once, in a random order (Fisher-Yates).
    const order = Array.from({ length: pages }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    stores.push([order]);
  }
  return { vcpus, pages, emulated: req.emulated ?? false, collections: req.collections ?? between(rng, 0, SWEEP.maxCollections), drain: req.drain ?? true, stores };
}

function floodParts(rng: Prng, req: ScenarioRequest): ShapeParts {
  const vcpus = req.vcpus ?? 1;
  const pages = between(rng, FLOOD.minPages, FLOOD.maxPages);
  const count = RING_ENTRIES + between(rng, FLOOD.minOverflow, FLOOD.maxOverflow);
  const stores: number[][][] = [];
  for (let v = 0; v < vcpus; v++) stores.push([Array.from({ length: count }, () => rng.below(pages))]);
  return { vcpus, pages, emulated: req.emulated ?? true, collections: req.collections ?? 0, drain: req.drain ?? true, stores };
}

/** The participants a scenario's runs have: userspace, its vCPUs, and its reset thread if any. */
export function rosterOf(s: ControlledScenario): Roster {
  const extras = s.log === 'ring' && s.resetter === 'thread' ? ['resetter'] : [];
  for (let t = 0; t < (s.userHarvesterThreads ?? 0); t++) extras.push(`harvester${t}`);
  return { vcpus: s.vcpus, extras };
}

export function scenarioRounds(s: ControlledScenario): number {
  return s.stores[0]?.length ?? 0;
}

export function totalStores(s: ControlledScenario): number {
  let n = 0;
  for (const mine of s.stores) for (const list of mine) n += list.length;
  return n;
}

/**
 * Steps a run takes, roughly, per store: the kernel's step points on its write path (the fault
 * path has more than the emulated one), and userspace's handling of its record.
 */
const STEPS_PER_STORE = { emulated: 4, fault: 7, collected: 3 } as const;
/** Userspace's steps per iteration besides its collections: resume, pause, wait, collect, verify... */
const STEPS_PER_ROUND = 6;
/** Each participant's first park (START) and its last move. */
const STEPS_PER_PARTICIPANT = 2;

/** A rough count of the steps one run takes: PCT spreads its change points over it. */
export function estimateSteps(s: ControlledScenario): number {
  const stores = totalStores(s);
  const perStore = (s.emulated ? STEPS_PER_STORE.emulated : STEPS_PER_STORE.fault) + STEPS_PER_STORE.collected;
  return stores * perStore + scenarioRounds(s) * (s.collections + STEPS_PER_ROUND) + STEPS_PER_PARTICIPANT * (s.vcpus + 1);
}

/** One line: `ring/standard 2 vCPUs 8 pages, 3 iterations, 12 stores, 2 collections, drain`. */
export function describeScenario(s: ControlledScenario): string {
  const at = slotLayout(s);
  const placed =
    (s.slotPages !== undefined ? ` in slots of ${at.ram.join('+')}` : '') +
    (at.smm > 0 ? ` + ${at.smm} SMRAM` : '') +
    (at.ringStart !== 0 ? `, rings from index ${at.ringStart}` : '');
  const ring = s.log !== 'ring' ? '' : `${s.ringCap === 'ring' ? ', pre-2022 ring cap' : ''}${s.resetter === 'thread' ? ', reset thread' : ''}`;
  return (
    `${s.log}/${s.userHarvester !== undefined ? `user:${s.userHarvester.slice(s.userHarvester.lastIndexOf('/') + 1)}${s.userHarvesterThreads !== undefined ? `×${s.userHarvesterThreads}` : ''}` : s.harvester} ${s.vcpus} vCPU${s.vcpus === 1 ? '' : 's'} ${s.pages} pages${placed}, ${scenarioRounds(s)} iteration(s), ` +
    `${totalStores(s)} stores${s.emulated ? ' (emulated)' : ''}, ${s.collections} collection(s)${s.drain ? ', drain' : ''}${ring}`
  );
}

/** What a scenario file may ask for: enough for any shrunk or hand-written case, not enough to hold the machine. */
const FILE_LIMITS = { maxVcpus: 8, maxPages: 65536, maxClearChunkPages: 1 << 30, maxCollections: 1000, maxRounds: 1000 } as const;

/**
 * Check a scenario read from a file. `where` names its origin (e.g. `--replay f.json`) so the
 * error says which field of which file is wrong, with the errno the equivalent input would get.
 */
export function validateScenario(input: unknown, where: string): ControlledScenario {
  const bad = (field: string, value: unknown, reason: string): never => {
    throw new ConfigError(`${where}: scenario.${field}`, JSON.stringify(value), 'EINVAL', reason);
  };
  if (typeof input !== 'object' || input === null) bad('', input, 'expected an object');
  const o = input as Record<string, unknown>;
  const int = (field: string, min: number, max: number): number => {
    const v = o[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(field, v, `must be an integer in ${min}..${max}`);
    return v as number;
  };
  const bool = (field: string): boolean => {
    const v = o[field];
    if (typeof v !== 'boolean') bad(field, v, 'must be true or false');
    return v as boolean;
  };
  if (!(LOG_MODES as readonly unknown[]).includes(o['log'])) bad('log', o['log'], `must be one of ${LOG_MODES.join(', ')}`);
  const log = o['log'] as LogMode;
  if (!(HARVESTER_VARIANTS as readonly unknown[]).includes(o['harvester'])) {
    bad('harvester', o['harvester'], `must be one of ${HARVESTER_VARIANTS.join(', ')}`);
  }
  const harvester = o['harvester'] as HarvesterVariant;
  const need = harvesterLogMode(harvester);
  if (need !== null && need !== log) bad('harvester', harvester, `needs log ${need}`);
  const vcpus = int('vcpus', 1, FILE_LIMITS.maxVcpus);
  const pages = int('pages', 1, FILE_LIMITS.maxPages);
  const ringEntries = int('ringEntries', 1, KVM_DIRTY_RING_MAX_ENTRIES);
  // Only a ring uses it (its size is recorded, unused, for the other logs). At least 256
  // entries (one page), so the kernel's reserved entries always fit.
  if (log === 'ring') validateRingEntries(ringEntries, `${where}: scenario.ringEntries`);
  const clearChunkPages = int('clearChunkPages', CLEAR_ALIGN_PAGES, FILE_LIMITS.maxClearChunkPages);
  if (clearChunkPages % CLEAR_ALIGN_PAGES !== 0) bad('clearChunkPages', clearChunkPages, `must be a multiple of ${CLEAR_ALIGN_PAGES}`);
  const emulated = bool('emulated');
  const collections = int('collections', 0, FILE_LIMITS.maxCollections);
  const drain = bool('drain');
  const stores = o['stores'];
  if (!Array.isArray(stores) || stores.length !== vcpus) bad('stores', '…', `must hold one list per vCPU (${vcpus})`);
  let rounds = -1;
  (stores as unknown[]).forEach((mine, v) => {
    if (!Array.isArray(mine) || mine.length < 1) bad(`stores[${v}]`, '…', 'must hold one list of pages per iteration');
    if (rounds < 0) rounds = (mine as unknown[]).length;
    if ((mine as unknown[]).length !== rounds) bad(`stores[${v}]`, '…', 'every vCPU needs the same number of iterations');
    (mine as unknown[]).forEach((list, k) => {
      if (!Array.isArray(list)) bad(`stores[${v}][${k}]`, list, 'must be a list of page numbers');
      (list as unknown[]).forEach((page, i) => {
        if (typeof page !== 'number' || !Number.isInteger(page) || page < 0 || page >= pages) {
          bad(`stores[${v}][${k}][${i}]`, page, `must be a page number below ${pages}`);
        }
      });
    });
  });
  if (rounds > FILE_LIMITS.maxRounds) bad('stores', rounds, `at most ${FILE_LIMITS.maxRounds} iterations`);
  const placement = validatePlacement(o, pages, log, bad);
  const { ringCap, resetter } = validateRingOptions(o, log, harvester, bad);
  return {
    ...validateUserHarvester(o['userHarvester'], o['userHarvesterThreads'], bad),
    ...placement,
    log,
    harvester,
    vcpus,
    pages,
    ringEntries,
    clearChunkPages,
    emulated,
    collections,
    drain,
    stores: stores as number[][][],
    ringCap,
    resetter,
  };
}

/** A scenario file's user harvester: the file: URL of its module, when there is one. */
function validateUserHarvester(user: unknown, threads: unknown, bad: (field: string, value: unknown, why: string) => never): { userHarvester?: string; userHarvesterThreads?: number } {
  if (user === undefined) return threads === undefined ? {} : bad('userHarvesterThreads', threads, 'only with a userHarvester');
  if (typeof user !== 'string' || !user.startsWith('file:')) bad('userHarvester', user, 'must be a file: URL');
  if (threads === undefined) return { userHarvester: user as string };
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > 8) bad('userHarvesterThreads', threads, 'must be an integer in 1..8');
  return { userHarvester: user as string, userHarvesterThreads: threads as number };
}

/** The ring capability and the resetter of a scenario file; files written before they existed ran today's defaults. */
function validateRingOptions(
  o: Record<string, unknown>,
  log: LogMode,
  harvester: HarvesterVariant,
  bad: (field: string, value: unknown, reason: string) => never,
): { ringCap: RingCap; resetter: Resetter } {
  const ringCap = o['ringCap'] ?? 'ring-acqrel';
  if (!(RING_CAPS as readonly unknown[]).includes(ringCap)) bad('ringCap', ringCap, `must be one of ${RING_CAPS.join(', ')}`);
  const resetter = o['resetter'] ?? 'inline';
  if (!(RESETTERS as readonly unknown[]).includes(resetter)) bad('resetter', resetter, `must be one of ${RESETTERS.join(', ')}`);
  if (resetter === 'thread' && (log !== 'ring' || harvester !== 'standard')) bad('resetter', resetter, 'a reset thread needs log ring and the standard harvester');
  return { ringCap: ringCap as RingCap, resetter: resetter as Resetter };
}
