/**
 * The addressing half of the weak memory model (model.ts): where each clock, location and
 * element lives in the shadow state (wmm-layout.ts), and the clock arithmetic. No semantics
 * here: what a load or a store does is in WeakModel.
 */
import { assert } from '../../base/assert.js';
import { WmmProfile } from './ordering.js';
import {
  ELEM_FIXED_WORDS,
  EVENT_WORDS,
  ElemWords,
  EventWords,
  INIT_WRITER,
  SLOT_HEADER_WORDS,
  SlotWords,
  WmmHeaderLayout,
  type WmmGeometry,
  type WmmSections,
  wmmSections,
} from './wmm-layout.js';

const H = WmmHeaderLayout.words;
const WORD_BYTES = Int32Array.BYTES_PER_ELEMENT;
/** A history must hold a store and the one before it, or nothing could ever be read stale. */
export const MIN_HISTORY = 2;
export const MAX_HISTORY = 64;

/** Shadow state for `g`, zeroed except for its header. */
export function allocateWmmState(g: WmmGeometry): SharedArrayBuffer {
  assert(g.threads >= 1 && g.history >= MIN_HISTORY && g.history <= MAX_HISTORY, `weak memory model: bad geometry ${JSON.stringify(g)}`);
  const s = wmmSections(g);
  const buffer = new SharedArrayBuffer(s.totalWords * WORD_BYTES);
  const st = new Int32Array(buffer);
  st[H.THREADS] = g.threads;
  st[H.HISTORY] = g.history;
  st[H.PROFILE] = g.profile;
  st[H.CUMULATIVE] = g.cumulative ? 1 : 0;
  st[H.LOCATIONS] = g.locations;
  st[H.SYNC_OBJECTS] = g.syncObjects;
  st[H.ARENA_SLOTS] = g.locations;
  st[H.EVENT_CAPACITY] = g.eventCapacity;
  return buffer;
}

export class ModelState {
  readonly state: Int32Array;
  readonly threads: number;
  readonly history: number;
  readonly profile: number;
  protected readonly x86: boolean;
  protected readonly cumulative: boolean;
  protected readonly s: WmmSections;
  /** The high word of the value the last read returned (two-word locations). */
  hi = 0;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    const st = new Int32Array(buffer);
    this.state = st;
    this.threads = st[H.THREADS]!;
    this.history = st[H.HISTORY]!;
    this.profile = st[H.PROFILE]!;
    this.x86 = this.profile === WmmProfile.X86;
    this.cumulative = st[H.CUMULATIVE] === 1 && !this.x86;
    this.s = wmmSections({
      threads: this.threads,
      history: this.history,
      locations: st[H.LOCATIONS]!,
      syncObjects: st[H.SYNC_OBJECTS]!,
      eventCapacity: st[H.EVENT_CAPACITY]!,
    });
  }

  get locations(): number {
    return this.state[H.LOCATIONS]!;
  }

  get syncObjects(): number {
    return this.state[H.SYNC_OBJECTS]!;
  }

  /** The scheduler's current step, which stamps the events logged from now on. */
  set step(n: number) {
    this.state[H.STEP] = n;
  }

  touched(loc: number): boolean {
    return this.state[this.s.dirOff + loc] !== 0;
  }

  /** A location's first use: its current memory contents become the initial store. */
  init(loc: number, lo: number, hi: number): void {
    const st = this.state;
    assert(loc >= 0 && loc < this.locations && st[this.s.dirOff + loc] === 0, `weak memory model: location ${loc} initialized twice or out of range`);
    const slotIndex = st[H.ARENA_NEXT]!;
    assert(slotIndex < st[H.ARENA_SLOTS]!, 'weak memory model: arena exhausted');
    st[H.ARENA_NEXT] = slotIndex + 1;
    st[this.s.dirOff + loc] = slotIndex + 1;
    const slot = this.s.arenaOff + slotIndex * this.s.slotWords;
    st[slot + SlotWords.COUNT] = 1;
    st[slot + SlotWords.HEAD] = 0;
    const e = slot + SLOT_HEADER_WORDS;
    st[e + ElemWords.LO] = lo;
    st[e + ElemWords.HI] = hi;
    st[e + ElemWords.WRITER] = INIT_WRITER;
    st[e + ElemWords.TS] = 0;
    this.clearClocks(e);
  }

  /** The newest store's value (low word; `hi` gets the high word): what real memory holds. */
  newest(loc: number): number {
    const e = this.newestElem(this.slotOf(loc));
    this.hi = this.state[e + ElemWords.HI]!;
    return this.state[e + ElemWords.LO]!;
  }

  /** Stores of `loc` currently kept, oldest first, as [lo, hi, writer, ts] (tests, explanations). */
  storesOf(loc: number): [number, number, number, number][] {
    const slot = this.slotOf(loc);
    const st = this.state;
    const out: [number, number, number, number][] = [];
    for (let j = 0; j < st[slot + SlotWords.COUNT]!; j++) {
      const e = this.elem(slot, j);
      out.push([st[e + ElemWords.LO]!, st[e + ElemWords.HI]!, st[e + ElemWords.WRITER]!, st[e + ElemWords.TS]!]);
    }
    return out;
  }

  /** Thread `t`'s own clock entry (its number of events so far). */
  ownTime(t: number): number {
    return this.state[this.clockOff(t) + t]!;
  }

  /** Whether `t` knows of `u`'s event at time `ts` (it happens-before t's next event). */
  knows(t: number, u: number, ts: number): boolean {
    return ts <= this.state[this.clockOff(t) + u]!;
  }

  protected append(slot: number, t: number, lo: number, hi: number): number {
    const st = this.state;
    const k = this.history;
    const count = st[slot + SlotWords.COUNT]!;
    let e: number;
    if (count < k) {
      e = this.elem(slot, count);
      st[slot + SlotWords.COUNT] = count + 1;
    } else {
      // Full: the oldest store is forgotten (fewer behaviours, never wrong ones).
      st[slot + SlotWords.HEAD] = (st[slot + SlotWords.HEAD]! + 1) % k;
      e = this.elem(slot, k - 1);
      st[H.EVICTIONS]!++;
    }
    st[e + ElemWords.LO] = lo;
    st[e + ElemWords.HI] = hi;
    st[e + ElemWords.WRITER] = t;
    st[e + ElemWords.TS] = this.ownTime(t);
    this.clearClocks(e);
    return e;
  }

  protected clearClocks(e: number): void {
    const p = this.threads;
    this.state.fill(0, e + ELEM_FIXED_WORDS, e + ELEM_FIXED_WORDS + p);
    this.state.fill(-1, e + ELEM_FIXED_WORDS + p, e + ELEM_FIXED_WORDS + 2 * p);
  }

  /** Log one access (element `e` read or written, or -1 for a fence). */
  protected log(t: number, op: number, loc: number, e: number, choice: number, candidates: number): void {
    const st = this.state;
    const n = st[H.EVENT_COUNT]!;
    st[H.EVENT_COUNT] = n + 1;
    if (n >= st[H.EVENT_CAPACITY]!) return;
    const ev = this.s.eventsOff + n * EVENT_WORDS;
    st[ev + EventWords.STEP] = st[H.STEP]!;
    st[ev + EventWords.THREAD] = t;
    st[ev + EventWords.OP] = op;
    st[ev + EventWords.LOC] = loc;
    st[ev + EventWords.LO] = e < 0 ? 0 : st[e + ElemWords.LO]!;
    st[ev + EventWords.HI] = e < 0 ? 0 : st[e + ElemWords.HI]!;
    st[ev + EventWords.WRITER] = e < 0 ? t : st[e + ElemWords.WRITER]!;
    st[ev + EventWords.TS] = e < 0 ? this.ownTime(t) : st[e + ElemWords.TS]!;
    st[ev + EventWords.CHOICE] = choice;
    st[ev + EventWords.CANDIDATES] = candidates;
  }

  protected tick(t: number): void {
    this.state[this.clockOff(t) + t]!++;
  }

  protected join(dst: number, src: number): void {
    const st = this.state;
    for (let u = 0; u < this.threads; u++) if (st[src + u]! > st[dst + u]!) st[dst + u] = st[src + u]!;
  }

  protected copy(dst: number, src: number): void {
    this.state.copyWithin(dst, src, src + this.threads);
  }

  protected slotOf(loc: number): number {
    const d = this.state[this.s.dirOff + loc]!;
    assert(d !== 0, `weak memory model: location ${loc} used before its first touch`);
    return this.s.arenaOff + (d - 1) * this.s.slotWords;
  }

  protected elem(slot: number, j: number): number {
    const k = (this.state[slot + SlotWords.HEAD]! + j) % this.history;
    return slot + SLOT_HEADER_WORDS + k * this.s.elemWords;
  }

  protected countOf(slot: number): number {
    return this.state[slot + SlotWords.COUNT]!;
  }

  protected newestElem(slot: number): number {
    return this.elem(slot, this.countOf(slot) - 1);
  }

  protected clockOff(t: number): number {
    return this.s.threadOff + t * this.s.threadWords;
  }

  protected acqAccOff(t: number): number {
    return this.clockOff(t) + this.threads;
  }

  protected relSnapOff(t: number): number {
    return this.clockOff(t) + 2 * this.threads;
  }

  protected observedOff(t: number): number {
    return this.clockOff(t) + 3 * this.threads;
  }

  protected lastYieldOff(t: number): number {
    return this.clockOff(t) + 4 * this.threads;
  }

  /** x86: per writer, the newest of its stores that every thread must see. */
  protected committedOff(writer: number): number {
    return this.s.globalOff + this.threads + writer;
  }

  protected scOff(): number {
    return this.s.globalOff;
  }

  protected syncOff(obj: number): number {
    assert(obj >= 0 && obj < this.syncObjects, `weak memory model: no sync object ${obj}`);
    return this.s.syncOff + obj * this.threads;
  }
}
