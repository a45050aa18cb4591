/**
 * For a load that read an older store than the newest: which ordering was missing. A payload
 * load (slot, offset) is ordered by the flags load of the same entry before it, which must be
 * an acquire reading a release (or a store after a release fence) whose clock carries the
 * payload: the vCPU's smp_wmb before DIRTY, the harvester's store-release of RESET. An SPTE
 * load is ordered by the release that published the page's record.
 */
import type { ModelEvent } from '../../kernel/wmm/events.js';
import { Access, Atomic, Barrier, Op } from '../../kernel/wmm/ordering.js';
import { type Roster, participantName } from './control-steps.js';
import { type ExplainMemory, type LocName, nameOf } from './explain-locations.js';

function keyOf(m: ExplainMemory, e: ModelEvent): LocName | null {
  return e.loc >= 0 ? nameOf(m.locs, e.loc) : null;
}

/** The event that wrote the store `load` read (same location, writer and time), if logged. */
function storeRead(m: ExplainMemory, k: number): ModelEvent | undefined {
  const load = m.events[k]!;
  for (let j = k - 1; j >= 0; j--) {
    const e = m.events[j]!;
    if (e.loc === load.loc && (e.op === Op.STORE || e.op === Op.RMW) && e.thread === load.writer && e.ts === load.ts) return e;
  }
  return undefined;
}

/** Whether the thread of the store at `k` made a release fence after its previous access to the same entry. */
function fencedBefore(m: ExplainMemory, k: number, key: string): boolean {
  const store = m.events[k]!;
  for (let j = k - 1; j >= 0; j--) {
    const e = m.events[j]!;
    if (e.thread !== store.thread) continue;
    if (e.op === Op.FENCE) return e.order === Barrier.WMB || e.order === Barrier.MB;
    if (e.op === Op.RMW && e.order === Atomic.FULL) return true;
    if (keyOf(m, e)?.key === key && e.op === Op.LOAD) return false;
  }
  return false;
}

function indexOf(m: ExplainMemory, e: ModelEvent): number {
  return m.events.indexOf(e);
}

/** One line: what was read stale, and the ordering that would have prevented it. */
export function missingPairNote(m: ExplainMemory, k: number, n: LocName, newest: ModelEvent | undefined, roster: Roster): string {
  const load = m.events[k]!;
  const t = participantName(load.thread, roster);
  const w = newest === undefined ? 'another participant' : participantName(newest.thread, roster);
  const what = `step ${load.step}: ${t} read ${n.name} = ${load.lo >>> 0}, not ${w}'s newer ${newest?.lo === undefined ? '?' : newest.lo >>> 0}`;
  if (n.field === 'slot' || n.field === 'offset') return payloadNote(m, k, n, newest, roster, what);
  if (n.key.startsWith('spte:') && newest !== undefined && newest.op === Op.RMW && newest.order === Atomic.RELAXED) {
    return `${what}: ${w} made the SPTE writable with cmpxchg_relaxed, so the record of the page does not carry it — "writable before dirty" held in program order only`;
  }
  return `${what}: no release/acquire chain from ${w} to ${t}`;
}

function payloadNote(m: ExplainMemory, k: number, n: LocName, newest: ModelEvent | undefined, roster: Roster, what: string): string {
  const load = m.events[k]!;
  const t = participantName(load.thread, roster);
  let flagsLoad = -1;
  for (let j = k - 1; j >= 0; j--) {
    const e = m.events[j]!;
    const en = keyOf(m, e);
    if (e.thread === load.thread && e.op === Op.LOAD && en?.key === n.key && en.field === 'flags') {
      flagsLoad = j;
      break;
    }
  }
  if (flagsLoad < 0) return `${what}: no flags check ordered this load`;
  const fl = m.events[flagsLoad]!;
  const flagsName = keyOf(m, fl)!.name;
  if (fl.order !== Access.ACQUIRE) return `${what}: missing acquire — ${t} loaded ${flagsName} with READ_ONCE (no smp_load_acquire), so its payload loads are not ordered after it`;
  const st = storeRead(m, flagsLoad);
  if (st === undefined) return `${what}: ${t}'s acquire of ${flagsName} read a store the log does not show`;
  const s = participantName(st.thread, roster);
  const released = st.order === Access.RELEASE || (st.op === Op.STORE && fencedBefore(m, indexOf(m, st), n.key));
  if (!released && newest !== undefined && st.thread === newest.thread) {
    return `${what}: missing smp_wmb — ${s} published ${flagsName} = ${st.lo >>> 0} with WRITE_ONCE and no barrier after its payload stores`;
  }
  if (!released) {
    return `${what}: missing release — ${s} stored ${flagsName} = ${st.lo >>> 0} with WRITE_ONCE, so ${t}'s acquire does not carry the payload ${s} had seen`;
  }
  return `${what}: the release/acquire chain from the payload's writer to ${t} is broken`;
}
