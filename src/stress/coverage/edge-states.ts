/**
 * The edge states a stress campaign reports coverage of: for each, the structure, what reaching
 * it means, the counter that records it (src/kernel/coverage-layout.ts), the modes it cannot
 * apply to and why, and a scenario request that makes a controlled run likely to reach it (the
 * coverage-guided generator asks for it while the state is unreached).
 */
import type { EdgeName } from '../../kernel/coverage-layout.js';
import type { ScenarioRequest } from '../controlled/scenario.js';
import type { StressMode } from '../stress-mode.js';

export const STRUCTURES = ['ring', 'coalescing', 'bitmap', 'clear', 'memslots', 'tlb', 'page-track', 'dirty-limit'] as const;
export type Structure = (typeof STRUCTURES)[number];

export interface EdgeState {
  /** Stable name, e.g. `ring.push.last-entry` (reports, --min-coverage's list). */
  readonly id: string;
  readonly structure: Structure;
  readonly what: string;
  /** The counter recording it; null for a state no stress run can record. */
  readonly edge: EdgeName | null;
  /** Modes it does not apply to, with the reason (left out of their coverage requirement). */
  readonly notApplicable?: Partial<Record<StressMode, string>>;
  /** Controlled scenarios likely to reach it. */
  readonly recipe: ScenarioRequest;
}

const RING: ScenarioRequest = { log: 'ring' };
const RING_LAP: ScenarioRequest = { shape: 'edges', log: 'ring', lap: true };
const RING_EDGES: ScenarioRequest = { shape: 'edges', log: 'ring' };
const LEGACY: ScenarioRequest = { shape: 'edges', log: 'bitmap' };
const MANUAL: ScenarioRequest = { shape: 'edges', log: 'clear' };
const TRACK_NA = { controlled: 'the controlled scheduler does not model page write-tracking' } as const;
const DIRTY_LIMIT_NA = 'dirty-limit throttles vCPUs only in `dirtyring migrate`; stress runs are `dirtyring run`s, which have no limiter';

function ringSide(side: 'push' | 'harvest' | 'reset', edge: 'PUSH' | 'HARVEST' | 'RESET', verb: string): EdgeState[] {
  return [
    { id: `ring.${side}.first-entry`, structure: 'ring', what: `${verb} entry 0`, edge: `RING_${edge}_FIRST`, recipe: RING },
    { id: `ring.${side}.last-entry`, structure: 'ring', what: `${verb} entry size − 1`, edge: `RING_${edge}_LAST`, recipe: RING_LAP },
    { id: `ring.${side}.lap`, structure: 'ring', what: `${verb} an entry past the first lap (reused)`, edge: `RING_${edge}_LAP`, recipe: RING_LAP },
  ];
}

function bitmapOp(op: 'get' | 'clear', edge: 'GET' | 'CLEAR', verb: string, recipe: ScenarioRequest): EdgeState[] {
  const s = (id: string, what: string, e: EdgeName): EdgeState => ({ id: `bitmap.${op}.${id}`, structure: 'bitmap', what: `${verb} ${what}`, edge: e, recipe });
  return [
    s('low-half', 'a bit of pages 0-31 of a 64-page word', `BITMAP_${edge}_LOW`),
    s('high-half', 'a bit of pages 32-63 of a 64-page word', `BITMAP_${edge}_HIGH`),
    s('first-word', 'a bit of the first word of a slot of several words', `BITMAP_${edge}_FIRST_WORD`),
    s('last-word', 'a bit of the last word of a slot of several words', `BITMAP_${edge}_LAST_WORD`),
    s('odd-tail', 'a bit of the short last word of a slot whose size is no multiple of 64', `BITMAP_${edge}_ODD_TAIL`),
  ];
}

export const EDGE_STATES: readonly EdgeState[] = [
  ...ringSide('push', 'PUSH', 'a push into'),
  ...ringSide('harvest', 'HARVEST', 'userspace harvested'),
  ...ringSide('reset', 'RESET', 'a reset consumed'),
  { id: 'ring.soft-full', structure: 'ring', what: 'a push left the ring soft-full (size − 64 entries used)', edge: 'RING_SOFT_FULL', recipe: { shape: 'flood' } },
  {
    id: 'ring.reset-mid-ring',
    structure: 'ring',
    what: 'a reset stopped before dirty_index: pushed entries were left behind it',
    edge: 'RING_RESET_MID_RING',
    recipe: { shape: 'micro', log: 'ring', collections: 3 },
  },
  { id: 'coalescing.merge-forward', structure: 'coalescing', what: 'an entry joined the open batch above its offset', edge: 'COALESCE_FORWARD', recipe: RING_EDGES },
  { id: 'coalescing.merge-backward', structure: 'coalescing', what: 'an entry moved the open batch down (a backward merge)', edge: 'COALESCE_BACKWARD', recipe: RING_EDGES },
  { id: 'coalescing.mask-high-half', structure: 'coalescing', what: 'a batch re-protected pages 32-63 of its mask', edge: 'COALESCE_MASK_HIGH', recipe: RING_EDGES },
  {
    id: 'coalescing.break-slot',
    structure: 'coalescing',
    what: 'a batch was flushed because the next entry names another slot',
    edge: 'COALESCE_BREAK_SLOT',
    recipe: { shape: 'edges', log: 'ring', slots: 3 },
  },
  { id: 'coalescing.break-far', structure: 'coalescing', what: 'a batch was flushed because the next entry is 64 pages or more away', edge: 'COALESCE_BREAK_FAR', recipe: RING_EDGES },
  { id: 'bitmap.set.low-half', structure: 'bitmap', what: 'a vCPU or device set a bit of pages 0-31 of a 64-page word', edge: 'BITMAP_SET_LOW', recipe: LEGACY },
  { id: 'bitmap.set.high-half', structure: 'bitmap', what: 'a vCPU or device set a bit of pages 32-63 of a 64-page word', edge: 'BITMAP_SET_HIGH', recipe: LEGACY },
  ...bitmapOp('get', 'GET', 'legacy GET took', LEGACY),
  ...bitmapOp('clear', 'CLEAR', 'CLEAR cleared', MANUAL),
  { id: 'clear.chunk-first-page', structure: 'clear', what: 'a CLEAR starting past page 0 cleared its first page', edge: 'CLEAR_CHUNK_FIRST_PAGE', recipe: MANUAL },
  { id: 'clear.chunk-last-page', structure: 'clear', what: 'a CLEAR ending before the slot end cleared its last page', edge: 'CLEAR_CHUNK_LAST_PAGE', recipe: MANUAL },
  { id: 'clear.slot-end-chunk', structure: 'clear', what: "a CLEAR of a later chunk ending at the slot's end cleared bits", edge: 'CLEAR_SLOT_END_CHUNK', recipe: MANUAL },
  { id: 'memslots.second-slot', structure: 'memslots', what: "a page of the VM's second memslot was recorded dirty", edge: 'MEMSLOT_SECOND', recipe: { shape: 'edges', slots: 2 } },
  { id: 'memslots.smm-record', structure: 'memslots', what: 'a page of the SMM address space (as_id 1) was recorded dirty', edge: 'SMM_RECORD', recipe: { shape: 'edges', smm: true } },
  { id: 'memslots.smm-reprotect', structure: 'memslots', what: 'a reset, GET or CLEAR re-protected pages of address space 1', edge: 'SMM_REPROTECT', recipe: { shape: 'edges', smm: true } },
  {
    id: 'tlb.stale-store-while-flush-waits',
    structure: 'tlb',
    what: 'a guest store went through a stale writable TLB entry while a remote flush waited for its vCPU',
    edge: 'TLB_STALE_STORE_FLUSH_WAITS',
    recipe: { shape: 'micro', log: 'ring', emulated: false, collections: 3, maxPages: 4 },
  },
  { id: 'page-track.tracked-store', structure: 'page-track', what: 'a store to a write-tracked page was emulated and notified', edge: 'TRACK_STORE', notApplicable: TRACK_NA, recipe: {} },
  {
    id: 'page-track.ring-full-exit',
    structure: 'page-track',
    what: "a vCPU left KVM_RUN because its notification ring was soft-full",
    edge: 'TRACK_RING_FULL_EXIT',
    notApplicable: TRACK_NA,
    recipe: {},
  },
  {
    id: 'dirty-limit.throttled',
    structure: 'dirty-limit',
    what: 'a vCPU slept after a ring-full exit because dirty-limit throttled it',
    edge: null,
    notApplicable: { free: DIRTY_LIMIT_NA, controlled: DIRTY_LIMIT_NA },
    recipe: {},
  },
];

/** Whether `state` counts in `mode`'s coverage requirement. */
export function appliesTo(state: EdgeState, mode: StressMode): boolean {
  return state.edge !== null && state.notApplicable?.[mode] === undefined;
}

export function edgeState(id: string): EdgeState | undefined {
  return EDGE_STATES.find((s) => s.id === id);
}
