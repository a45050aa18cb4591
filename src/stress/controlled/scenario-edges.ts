/**
 * The `edges` shape of controlled scenarios: a micro-run — a few vCPUs, a few stores each, so
 * just as fast — whose pages sit where the structures have edges: both 32-page halves of a
 * 64-page bitmap word, the first and last word of a slot, the last page of a slot whose size
 * is no multiple of 64, CLEAR chunk boundaries (chunks are 64 pages), several memslots (a ring
 * batch then changes slot), an SMRAM memslot in address space 1, and rings that start a few
 * entries before the end of a lap — or before their u32 indices wrap — so that a handful of
 * pushes, harvests and resets cross index size − 1 into the next lap.
 */
import { U32_RANGE } from '../../abi/constants.js';
import type { Prng } from '../../base/prng.js';
import type { LogMode } from '../../userspace/log-collectors.js';
import { between, percent } from '../draw.js';

/** What an `edges` scenario may be asked for (part of a ScenarioRequest). */
export interface EdgesRequest {
  readonly vcpus?: number;
  readonly emulated?: boolean;
  readonly collections?: number;
  readonly drain?: boolean;
  /** Address-space-0 memslots, 1..3. */
  readonly slots?: number;
  /** With an SMRAM memslot (true), without (false), or either. */
  readonly smm?: boolean;
  /** ring: rings start just before the end of a lap (true), at 0 (false), or either. */
  readonly lap?: boolean;
}

/** What the shape decides. */
export interface EdgesParts {
  readonly vcpus: number;
  readonly pages: number;
  readonly emulated: boolean;
  readonly collections: number;
  readonly drain: boolean;
  readonly stores: number[][][];
  readonly slotPages: number[];
  readonly smmPages?: number;
  readonly ringStart?: number;
}

const PAGES_PER_WORD = 64;
const HALF_WORD = PAGES_PER_WORD / 2;

const EDGES = {
  vcpuWeights: [[1, 45], [2, 45], [3, 10]] as readonly (readonly [number, number])[],
  slotWeights: [[1, 40], [2, 40], [3, 20]] as readonly (readonly [number, number])[],
  /** 64-page bitmap words per slot: a slot of several words has a first and a last one. */
  maxWords: 3,
  /** Percent of slots whose page count is no multiple of 64 (a short last word). */
  oddPercent: 70,
  smmPercent: 25,
  maxSmmPages: 40,
  maxRounds: 3,
  minStoresPerRound: 2,
  maxStoresPerRound: 6,
  /**
   * A few hot edge pages take most stores (a page must be written again after its record was
   * consumed for a lost re-protection to show), other edge pages some, any page the rest.
   */
  minHotPages: 2,
  maxHotPages: 5,
  hotStorePercent: 60,
  edgeStorePercent: 25,
  emulatedPercent: 15,
  maxCollections: 3,
  /** Percent of ring scenarios whose rings start 1..3 entries before a lap ends. */
  lapPercent: 60,
  maxLaps: 3,
  maxRunway: 3,
  /** Of those, percent that start before the u32 indices wrap (2^32 is a multiple of every ring size). */
  u32WrapPercent: 25,
} as const;

/** A slot's page count: 1..3 words, most of them with a short last word. */
function slotSize(rng: Prng): number {
  const words = between(rng, 1, EDGES.maxWords);
  return percent(rng, EDGES.oddPercent) ? (words - 1) * PAGES_PER_WORD + between(rng, 1, PAGES_PER_WORD - 1) : words * PAGES_PER_WORD;
}

/** The edge pages of a slot of `n` pages at scenario page `from`: each word's ends and halves' ends, the slot's last two pages. */
function edgePages(from: number, n: number): number[] {
  const out = new Set<number>();
  for (let w = 0; w * PAGES_PER_WORD < n; w++) {
    const first = w * PAGES_PER_WORD;
    for (const p of [first, first + HALF_WORD - 1, first + HALF_WORD, first + PAGES_PER_WORD - 1]) if (p < n) out.add(from + p);
  }
  out.add(from + n - 1);
  if (n > 1) out.add(from + n - 2);
  return [...out];
}

/** Where the rings start: just before the end of lap 1..3, or before the u32 indices wrap. */
function ringStart(rng: Prng, ringEntries: number): number {
  const runway = between(rng, 1, EDGES.maxRunway);
  if (percent(rng, EDGES.u32WrapPercent)) return U32_RANGE - runway;
  return between(rng, 1, EDGES.maxLaps) * ringEntries - runway;
}

export function edgesParts(rng: Prng, req: EdgesRequest, log: LogMode, ringEntries: number): EdgesParts {
  const vcpus = req.vcpus ?? rng.weighted(EDGES.vcpuWeights);
  const slotPages = Array.from({ length: req.slots ?? rng.weighted(EDGES.slotWeights) }, () => slotSize(rng));
  const smm = req.smm ?? percent(rng, EDGES.smmPercent);
  const smmPages = smm ? between(rng, 1, EDGES.maxSmmPages) : 0;
  const edges: number[] = [];
  let pages = 0;
  for (const n of [...slotPages, ...(smm ? [smmPages] : [])]) {
    edges.push(...edgePages(pages, n));
    pages += n;
  }
  const hot = Array.from({ length: between(rng, EDGES.minHotPages, EDGES.maxHotPages) }, () => edges[rng.below(edges.length)]!);
  const rounds = between(rng, 1, EDGES.maxRounds);
  const store = (): number => {
    const r = rng.below(100);
    if (r < EDGES.hotStorePercent) return hot[rng.below(hot.length)]!;
    return r < EDGES.hotStorePercent + EDGES.edgeStorePercent ? edges[rng.below(edges.length)]! : rng.below(pages);
  };
  const stores = Array.from({ length: vcpus }, () =>
    Array.from({ length: rounds }, () => Array.from({ length: between(rng, EDGES.minStoresPerRound, EDGES.maxStoresPerRound) }, store)),
  );
  const emulated = req.emulated ?? percent(rng, EDGES.emulatedPercent);
  const collections = req.collections ?? between(rng, 0, EDGES.maxCollections);
  const drain = req.drain ?? rng.below(2) === 0;
  const lap = log === 'ring' && (req.lap ?? percent(rng, EDGES.lapPercent));
  return {
    vcpus,
    pages,
    emulated,
    collections,
    drain,
    stores,
    slotPages,
    ...(smm && { smmPages }),
    ...(lap && { ringStart: ringStart(rng, ringEntries) }),
  };
}
