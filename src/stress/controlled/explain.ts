/**
 * Why the invariant broke: the chain of steps, per participant, that left a written page with
 * no record and no protection. It merges what the invariant checker saw happen to the page and
 * to the ring entries that named it (journal), the re-protections and reset calls of the trace,
 * and — under a weak memory model — every modelled access to those entries and to the page's
 * SPTE and bitmap word: which store each load read, whether it was the newest, and which
 * release/acquire pair was missing when it was not. As data (JSON, for a browser view) and as
 * a diagram with one column per participant (formatExplanation).
 */
import type { ModelEvent } from '../../kernel/wmm/events.js';
import type { ExplainMemory } from './explain-locations.js';
import { Op, shortAccessName } from '../../kernel/wmm/ordering.js';
import { Step } from '../../kernel/step-hook.js';
import { ControlStep, type Roster, UserIoctl, participantCount, participantName } from './control-steps.js';
import type { InvariantViolation, JournalEntry } from './invariant.js';
import type { TraceEntry } from './trace.js';
import { type LocName, entryName, nameOf } from './explain-locations.js';
import { missingPairNote } from './explain-notes.js';

export type RowMark = '' | 'stale' | 'violation';

export interface ExplanationRow {
  readonly step: number;
  readonly participant: number;
  readonly text: string;
  readonly mark: RowMark;
  /** Within a step: the move's ioctl (0), its modelled accesses (1), what it changed (2), the violation (3). */
  readonly order: number;
}

export interface Explanation {
  readonly page: number;
  readonly step: number;
  readonly reason: string;
  /** Column names, in participant order. */
  readonly participants: string[];
  readonly rows: ExplanationRow[];
  /** Which release/acquire pair (or fence) was missing, for each stale read. */
  readonly notes: string[];
}

export type { ExplainMemory } from './explain-locations.js';

const JOURNAL_TEXT: Record<JournalEntry['kind'], (j: JournalEntry) => string> = {
  recorded: (j) => `${entryName(j.ring, j.entry)} := page ${j.page}, DIRTY`,
  harvested: (j) => `takes ${entryName(j.ring, j.entry)} (page ${j.page})`,
  freed: (j) => `frees ${entryName(j.ring, j.entry)}`,
  written: (j) => `page ${j.page} written`,
  writable: (j) => `SPTE ${j.page} made writable`,
  protected: (j) => `SPTE ${j.page} write-protected`,
  cached: (j) => `TLB caches page ${j.page}`,
  collected: (j) => `copies page ${j.page} (collected)`,
  'bit-set': (j) => `sets dirty bit ${j.page}`,
  'bit-taken': (j) => `takes dirty bit ${j.page}`,
};

/** The first step of the record cycle that ended in the page's last collection before `until`. */
function episodeStart(page: readonly JournalEntry[], until: number): number {
  let collected = -1;
  for (const j of page) if (j.kind === 'collected' && j.step < until) collected = j.step;
  let start = 0;
  for (const j of page) if ((j.kind === 'recorded' || j.kind === 'bit-set') && j.step <= (collected < 0 ? until : collected)) start = j.step;
  return start;
}

export function explainViolation(
  v: InvariantViolation,
  journal: readonly JournalEntry[],
  trace: readonly TraceEntry[],
  roster: Roster,
  memory: ExplainMemory | null,
): Explanation {
  const mine = journal.filter((j) => j.page === v.page && j.step <= v.step);
  const start = episodeStart(mine, v.step);
  const rows: ExplanationRow[] = mine.filter((j) => j.step >= start).map((j) => ({ step: j.step, participant: j.participant, text: JOURNAL_TEXT[j.kind](j), mark: '', order: 2 }));
  // Appended one by one: an episode of a long run has more rows than a call takes arguments.
  for (const r of traceRows(trace, start, v.step, v.page)) rows.push(r);
  const entries = new Set(mine.filter((j) => j.ring >= 0 && j.step >= start).map((j) => `${j.ring}:${j.entry}`));
  const notes: string[] = [];
  if (memory !== null) for (const r of memoryRows(memory, entries, v.page, start, v.step, roster, notes)) rows.push(r);
  rows.push({ step: v.step, participant: v.participant, text: `✗ page ${v.page}: unrecorded, unprotected`, mark: 'violation', order: 3 });
  rows.sort((a, b) => a.step - b.step || a.order - b.order);
  const participants = Array.from({ length: participantCount(roster) }, (_, p) => participantName(p, roster));
  return { page: v.page, step: v.step, reason: v.reason, participants, rows, notes };
}

/** The reset ioctls and the re-protections of the steps in range. */
function traceRows(trace: readonly TraceEntry[], from: number, to: number, page: number): ExplanationRow[] {
  const rows: ExplanationRow[] = [];
  for (let s = from; s <= to && s < trace.length; s++) {
    const [p, step, a, b] = trace[s]!;
    if (step === Step.RESET_REPROTECT) {
      const pages: number[] = [];
      for (let k = 0; k < 32; k++) if (((b >>> k) & 1) !== 0) pages.push(a + k);
      rows.push({ step: s, participant: p, text: `re-protects page${pages.length === 1 ? '' : 's'} ${pages.join(',')}${pages.includes(page) ? '' : ` (not ${page})`}`, mark: '', order: 0 });
    } else if (step === ControlStep.USER_IOCTL && a === UserIoctl.RESET_DIRTY_RINGS) {
      rows.push({ step: s, participant: p, text: 'KVM_RESET_DIRTY_RINGS', mark: '', order: 0 });
    }
  }
  return rows;
}

function eventText(e: ModelEvent, n: LocName | null, newest: ModelEvent | undefined, roster: Roster): string {
  if (e.op === Op.FENCE) return shortAccessName(e.op, e.order);
  const name = n?.name ?? `location ${e.loc}`;
  const value = e.hi !== 0 ? `${e.hi}:${e.lo >>> 0}` : `${e.lo >>> 0}`;
  if (e.op === Op.LOAD) {
    const stale = e.choice > 0 && newest !== undefined ? ` STALE (newest ${newest.lo >>> 0}, ${participantName(newest.thread, roster)})` : '';
    return `${name} → ${value} ${shortAccessName(e.op, e.order)}${stale}`;
  }
  return `${name} = ${value} ${shortAccessName(e.op, e.order)}`;
}

/** The modelled accesses to the page's entries, SPTE and bitmap word in range (and the fences of those steps). */
function memoryRows(
  m: ExplainMemory,
  entries: ReadonlySet<string>,
  page: number,
  from: number,
  to: number,
  roster: Roster,
  notes: string[],
): ExplanationRow[] {
  const rows: ExplanationRow[] = [];
  const newestByLoc = new Map<number, ModelEvent>();
  const stepsOfInterest = new Set<string>();
  const keys = new Set([...entries, `spte:${page}`, `bitmap:${page >>> 5}`]);
  /** The payload an entry of interest held when the range starts (its push's stores, a step or two earlier). */
  const payloadBefore = new Map<number, ModelEvent>();
  for (const [k, e] of m.events.entries()) {
    const n = e.loc >= 0 ? nameOf(m.locs, e.loc) : null;
    const before = newestByLoc.get(e.loc);
    if (e.op === Op.STORE || e.op === Op.RMW) newestByLoc.set(e.loc, e);
    if (e.step < from && e.op === Op.STORE && n !== null && keys.has(n.key) && n.field !== 'flags') payloadBefore.set(e.loc, e);
    if (e.step < from || e.step > to) continue;
    const relevant = n !== null && keys.has(n.key);
    if (e.op === Op.FENCE ? !stepsOfInterest.has(`${e.step}:${e.thread}`) && !nextIsRelevant(m, k, keys) : !relevant) continue;
    stepsOfInterest.add(`${e.step}:${e.thread}`);
    const stale = e.op === Op.LOAD && e.choice > 0;
    rows.push({ step: e.step, participant: e.thread, text: eventText(e, n, before, roster), mark: stale ? 'stale' : '', order: 1 });
    if (stale && n !== null) notes.push(missingPairNote(m, k, n, before, roster));
  }
  for (const e of payloadBefore.values()) {
    rows.push({ step: e.step, participant: e.thread, text: eventText(e, nameOf(m.locs, e.loc), undefined, roster), mark: '', order: 1 });
  }
  return rows;
}

/** Whether the next event of the same thread in the same step touches a location of interest (a fence before it). */
function nextIsRelevant(m: ExplainMemory, k: number, keys: ReadonlySet<string>): boolean {
  const e = m.events[k]!;
  for (let j = k + 1; j < m.events.length; j++) {
    const f = m.events[j]!;
    if (f.thread !== e.thread) continue;
    if (f.step !== e.step) return false;
    const n = f.loc >= 0 ? nameOf(m.locs, f.loc) : null;
    return n !== null && keys.has(n.key);
  }
  return false;
}

/** The explanation as a diagram: one column per participant, one line per event, notes below. */
export function formatExplanation(e: Explanation, width = 36): string[] {
  const used = e.participants.map((_, p) => e.rows.some((r) => r.participant === p));
  const cols = e.participants.map((name, p) => ({ name, p })).filter((c) => used[c.p]);
  const clip = (s: string): string => (s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width));
  const lines = [`step  ${cols.map((c) => clip(c.name)).join(' ')}`.trimEnd(), `----  ${cols.map(() => '-'.repeat(width)).join(' ')}`];
  for (const r of e.rows) {
    const mark = r.mark === 'stale' ? '! ' : '';
    lines.push(`${String(r.step).padStart(4)}  ${cols.map((c) => clip(c.p === r.participant ? mark + r.text : '')).join(' ')}`.trimEnd());
  }
  lines.push('', e.reason);
  for (const n of e.notes) lines.push(`! ${n}`);
  return lines;
}
