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

export interface ControlledScenario {
  readonly log: LogMode;
  readonly harvester: HarvesterVariant;
  readonly vcpus: number;
  /** Pages of the one logged memslot. */
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
}

export const SCENARIO_SHAPES = ['micro', 'sweep', 'flood'] as const;
/**
 * micro: 1-3 vCPUs, a dozen pages, a few stores each; sweep: one vCPU faulting on 64-96
 * distinct pages (enough entries for once-in-61 bugs); flood: one vCPU on the emulated path
 * pushing 270-300 entries in one iteration (more than a 256-entry ring holds).
 */
export type ScenarioShape = (typeof SCENARIO_SHAPES)[number];

/** Constraints a campaign (e.g. a mutant's) puts on generated scenarios. */
export interface ScenarioRequest {
  readonly shape?: ScenarioShape;
  readonly log?: LogMode;
  readonly harvester?: HarvesterVariant;
  readonly vcpus?: number;
  readonly emulated?: boolean;
  readonly collections?: number;
  readonly drain?: boolean;
  /** micro: at most this many pages (fewer pages, more collisions between stores). */
  readonly maxPages?: number;
}

const RING_ENTRIES = 256;
const CLEAR_CHUNK_PAGES = 64;

/** A scenario from `rng`, honouring `req`. */
export function generateScenario(rng: Prng, req: ScenarioRequest = {}): ControlledScenario {
  const shape = req.shape ?? rng.weighted<ScenarioShape>([['micro', 90], ['sweep', 5], ['flood', 5]]);
  const forcedLog = req.harvester ? harvesterLogMode(req.harvester) : null;
  const log =
    req.log ?? forcedLog ?? (shape === 'flood' ? 'ring' : rng.weighted<LogMode>([['ring', 60], ['bitmap', 20], ['clear', 20]]));
  const harvester = req.harvester ?? pickHarvester(rng, log, 15);
  let vcpus: number;
  let pages: number;
  let emulated: boolean;
  let collections: number;
  let drain: boolean;
  const stores: number[][][] = [];
  if (shape === 'micro') {
    vcpus = req.vcpus ?? rng.weighted([[1, 35], [2, 45], [3, 20]]);
    pages = 2 + rng.below(Math.max(1, Math.min(11, (req.maxPages ?? 12) - 1)));
    const rounds = 1 + rng.below(3);
    const hot = Array.from({ length: 1 + rng.below(Math.min(pages, 4)) }, () => rng.below(pages));
    for (let v = 0; v < vcpus; v++) {
      const mine: number[][] = [];
      for (let k = 0; k < rounds; k++) {
        mine.push(Array.from({ length: 1 + rng.below(6) }, () => (rng.below(100) < 70 ? hot[rng.below(hot.length)]! : rng.below(pages))));
      }
      stores.push(mine);
    }
    emulated = req.emulated ?? rng.below(100) < 15;
    collections = req.collections ?? rng.below(4);
    drain = req.drain ?? rng.below(2) === 0;
  } else if (shape === 'sweep') {
    vcpus = req.vcpus ?? 1;
    pages = 64 + rng.below(33);
    for (let v = 0; v < vcpus; v++) {
      const order = Array.from({ length: pages }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      stores.push([order]);
    }
    emulated = req.emulated ?? false;
    collections = req.collections ?? rng.below(3);
    drain = req.drain ?? true;
  } else {
    vcpus = req.vcpus ?? 1;
    pages = 2 + rng.below(7);
    const count = RING_ENTRIES + 14 + rng.below(31);
    for (let v = 0; v < vcpus; v++) stores.push([Array.from({ length: count }, () => rng.below(pages))]);
    emulated = req.emulated ?? true;
    collections = req.collections ?? 0;
    drain = req.drain ?? true;
  }
  if (harvester === 'hostile-wrap' && pages >= 2) {
    // Give every iteration two distinct pages per vCPU, so a final collection can hold a pair.
    for (const mine of stores) {
      for (const list of mine) {
        if (new Set(list).size < 2) list.push(((list[0] ?? 0) + 1) % pages);
      }
    }
  }
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
  };
}

export function scenarioRounds(s: ControlledScenario): number {
  return s.stores[0]?.length ?? 0;
}

export function totalStores(s: ControlledScenario): number {
  let n = 0;
  for (const mine of s.stores) for (const list of mine) n += list.length;
  return n;
}

/** A rough count of the steps one run takes: PCT spreads its change points over it. */
export function estimateSteps(s: ControlledScenario): number {
  const stores = totalStores(s);
  return stores * (s.emulated ? 4 : 7) + stores * 3 + scenarioRounds(s) * (s.collections + 6) + 2 * (s.vcpus + 1);
}

/** One line: `ring/standard 2 vCPUs 8 pages, 3 iterations, 12 stores, 2 collections, drain`. */
export function describeScenario(s: ControlledScenario): string {
  return (
    `${s.log}/${s.harvester} ${s.vcpus} vCPU${s.vcpus === 1 ? '' : 's'} ${s.pages} pages, ${scenarioRounds(s)} iteration(s), ` +
    `${totalStores(s)} stores${s.emulated ? ' (emulated)' : ''}, ${s.collections} collection(s)${s.drain ? ', drain' : ''}`
  );
}

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
  const vcpus = int('vcpus', 1, 8);
  const pages = int('pages', 1, 65536);
  const ringEntries = int('ringEntries', 1, 65536);
  // Only a ring uses it (its size is recorded, unused, for the other logs). At least 256
  // entries (one page), so the kernel's reserved entries always fit.
  if (log === 'ring') validateRingEntries(ringEntries, `${where}: scenario.ringEntries`);
  const clearChunkPages = int('clearChunkPages', 64, 1 << 30);
  if (clearChunkPages % 64 !== 0) bad('clearChunkPages', clearChunkPages, 'must be a multiple of 64');
  const emulated = bool('emulated');
  const collections = int('collections', 0, 1000);
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
  if (rounds > 1000) bad('stores', rounds, 'at most 1000 iterations');
  return {
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
  };
}
