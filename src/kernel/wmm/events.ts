/** The model's event log (wmm-layout.ts), read back for explanations once a run is over. */
import { OP_SHIFT } from './ordering.js';
import { EVENT_WORDS, EventWords, WmmHeaderLayout, wmmSections } from './wmm-layout.js';

export interface ModelEvent {
  /** The scheduler step during which it happened. */
  readonly step: number;
  readonly thread: number;
  /** Op (ordering.ts) and its ordering (Access, Barrier or Atomic). */
  readonly op: number;
  readonly order: number;
  /** -1 for a fence. */
  readonly loc: number;
  /** The value stored, or read. */
  readonly lo: number;
  readonly hi: number;
  /** The store written or read: its writer (-1: the initial value) and the writer's time. */
  readonly writer: number;
  readonly ts: number;
  /** Loads: which candidate was read (0 = the newest) among how many. */
  readonly choice: number;
  readonly candidates: number;
}

const H = WmmHeaderLayout.words;
const OP_MASK = (1 << OP_SHIFT) - 1;

/** Every logged event of the shadow state in `buffer`, in the order they happened. */
export function readModelEvents(buffer: SharedArrayBuffer): ModelEvent[] {
  const st = new Int32Array(buffer);
  const s = wmmSections({
    threads: st[H.THREADS]!,
    history: st[H.HISTORY]!,
    locations: st[H.LOCATIONS]!,
    syncObjects: st[H.SYNC_OBJECTS]!,
    eventCapacity: st[H.EVENT_CAPACITY]!,
  });
  const n = Math.min(st[H.EVENT_COUNT]!, st[H.EVENT_CAPACITY]!);
  const out: ModelEvent[] = [];
  for (let i = 0; i < n; i++) {
    const e = s.eventsOff + i * EVENT_WORDS;
    const opWord = st[e + EventWords.OP]!;
    out.push({
      step: st[e + EventWords.STEP]!,
      thread: st[e + EventWords.THREAD]!,
      op: opWord >> OP_SHIFT,
      order: opWord & OP_MASK,
      loc: st[e + EventWords.LOC]!,
      lo: st[e + EventWords.LO]!,
      hi: st[e + EventWords.HI]!,
      writer: st[e + EventWords.WRITER]!,
      ts: st[e + EventWords.TS]!,
      choice: st[e + EventWords.CHOICE]!,
      candidates: st[e + EventWords.CANDIDATES]!,
    });
  }
  return out;
}
