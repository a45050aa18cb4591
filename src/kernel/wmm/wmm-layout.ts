/**
 * The shadow state of the weak memory model (model.ts), one Int32Array shared by every thread
 * of a controlled run: a header block, then per-thread clocks, global clocks, the clocks of
 * synchronization objects, the location directory, the arena of store histories and the event
 * log. Only the participant the scheduler granted touches it, and every hand-off between
 * participants goes through Atomics, so plain reads and writes of it are race-free.
 *
 * Sections, in order (P threads, K stores kept per location):
 *  - thread t: CLOCK[P], ACQUIRE_ACC[P] (what an acquire fence would join), RELEASE_SNAP[P] (the
 *    clock at the last release fence), OBSERVED[P] (stores seen by relaxed loads, published by
 *    later releases: A-cumulativity), LAST_YIELD;
 *  - global: SC[P] (the clock every full fence joins through), COMMITTED[P] (x86: per writer,
 *    the newest of its stores every thread must see);
 *  - sync objects: one clock[P] each (locks, control words);
 *  - directory: per location, its arena slot + 1 (0: never touched);
 *  - arena: per slot COUNT, HEAD, two spare words, then K elements in a ring, oldest at HEAD;
 *    element: LO, HI, WRITER (-1: the initial value), TS, SYNC[P], SEEN[P] (-1: never read);
 *  - events: EVENT_WORDS per modelled access, for explaining a failure afterwards.
 */
import { defineBlock } from '../../abi/layout.js';

export const WmmHeaderLayout = defineBlock(
  'wmm-header',
  [
    'THREADS',
    'HISTORY',
    /** WmmProfile. */
    'PROFILE',
    /** 1: releases publish what relaxed loads observed (A-cumulative, as LKMM's releases are). */
    'CUMULATIVE',
    'LOCATIONS',
    'SYNC_OBJECTS',
    /** Arena slots handed out so far. */
    'ARENA_NEXT',
    'ARENA_SLOTS',
    'EVENT_CAPACITY',
    /** Events written so far (may exceed the capacity: the log keeps the first ones). */
    'EVENT_COUNT',
    /** The scheduler's step number, written before each grant: events are stamped with it. */
    'STEP',
    /** Loads that returned a store older than the newest. */
    'STALE_READS',
    /** Stores dropped from a full history. */
    'EVICTIONS',
  ],
  [],
);

export const WMM_HEADER_WORDS = WmmHeaderLayout.wordCount;
/** Words of the arena slot header before its elements. */
export const SLOT_HEADER_WORDS = 4;
export const SlotWords = { COUNT: 0, HEAD: 1 } as const;
/** Element fields before its SYNC[P] and SEEN[P] clocks. */
export const ElemWords = { LO: 0, HI: 1, WRITER: 2, TS: 3 } as const;
export const ELEM_FIXED_WORDS = 4;
/** The writer of a location's initial value: before every thread, so it happens-before all. */
export const INIT_WRITER = -1;

/** One logged access: the scheduler step, the thread, what it did, and which store a load read. */
export const EventWords = { STEP: 0, THREAD: 1, OP: 2, LOC: 3, LO: 4, HI: 5, WRITER: 6, TS: 7, CHOICE: 8, CANDIDATES: 9 } as const;
export const EVENT_WORDS = 10;

export interface WmmGeometry {
  readonly threads: number;
  readonly history: number;
  readonly profile: number;
  readonly cumulative: boolean;
  readonly locations: number;
  readonly syncObjects: number;
  readonly eventCapacity: number;
}

export interface WmmSections {
  readonly threadWords: number;
  readonly threadOff: number;
  readonly globalOff: number;
  readonly syncOff: number;
  readonly dirOff: number;
  readonly arenaOff: number;
  readonly eventsOff: number;
  readonly elemWords: number;
  readonly slotWords: number;
  readonly totalWords: number;
}

/** Where each section starts, in words, for geometry `g`. */
export function wmmSections(g: Pick<WmmGeometry, 'threads' | 'history' | 'locations' | 'syncObjects' | 'eventCapacity'>): WmmSections {
  const p = g.threads;
  const threadWords = 4 * p + 1;
  const threadOff = WMM_HEADER_WORDS;
  const globalOff = threadOff + p * threadWords;
  const syncOff = globalOff + 2 * p;
  const dirOff = syncOff + g.syncObjects * p;
  const arenaOff = dirOff + g.locations;
  const elemWords = ELEM_FIXED_WORDS + 2 * p;
  const slotWords = SLOT_HEADER_WORDS + g.history * elemWords;
  const eventsOff = arenaOff + g.locations * slotWords;
  const totalWords = eventsOff + g.eventCapacity * EVENT_WORDS;
  return { threadWords, threadOff, globalOff, syncOff, dirOff, arenaOff, eventsOff, elemWords, slotWords, totalWords };
}
