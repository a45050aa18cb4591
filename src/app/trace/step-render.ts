/**
 * One step of a replayed schedule, drawn: each ring's entries (state and the page each names,
 * dirty_index, reset_index), each page of the checked memslot (SPTE, dirty bit, stamp), and
 * what the move changed compared with the step before, in words.
 */
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET } from '../../abi/constants.js';
import type { RingSnapshot, StepSnapshot } from '../../stress/controlled/step-snapshots.js';
import { el } from '../dom.js';

/** Entries shown either side of the used part of a ring, and at most. */
const RING_MARGIN = 4;
const MAX_ENTRIES_SHOWN = 40;

function entryState(r: RingSnapshot, e: number): string {
  const size = r.flags.length;
  const used = (r.dirtyIndex - r.resetIndex) >>> 0;
  const inWindow = ((e - r.resetIndex) & (size - 1)) < used;
  const f = r.flags[e]!;
  if ((f & KVM_DIRTY_GFN_F_RESET) !== 0) return 'harvested';
  if ((f & KVM_DIRTY_GFN_F_DIRTY) !== 0) return 'dirty';
  if (inWindow) return 'pushing';
  return r.dirtyIndex > e || r.dirtyIndex >= size ? 'reset' : 'empty';
}

/** The rings as rows of entry cells. */
export function renderRings(s: StepSnapshot, prev: StepSnapshot | null): HTMLElement {
  const box = el('div', { class: 'trace-rings' });
  if (s.rings.length === 0) box.append(el('p', { class: 'small', text: 'No dirty rings: this scenario logs through the dirty bitmap.' }));
  for (const [i, r] of s.rings.entries()) {
    const p = prev?.rings[i];
    const mask = r.flags.length - 1;
    // The entries between reset_index and dirty_index, with a few on either side (rings are long, moves touch a few entries).
    const lo = Math.max(0, Math.min(r.resetIndex, r.dirtyIndex) - RING_MARGIN);
    const hi = Math.min(lo + MAX_ENTRIES_SHOWN, Math.max(r.dirtyIndex, r.resetIndex) + RING_MARGIN, lo + r.flags.length);
    const cells: HTMLElement[] = [];
    for (let n = lo; n < hi; n++) {
      const e = n & mask;
      const st = entryState(r, e);
      const changed = p !== undefined && (p.flags[e] !== r.flags[e] || p.offsets[e] !== r.offsets[e]);
      const marks = [n === r.dirtyIndex ? 'd' : '', n === r.resetIndex ? 'r' : ''].join('');
      cells.push(
        el('td', { class: `entry ${st}${changed ? ' changed' : ''}`, title: `entry ${e}: ${st}${st === 'empty' ? '' : `, page ${r.offsets[e]}`}` },
          st === 'empty' ? '' : String(r.offsets[e]), marks ? el('sup', { text: marks }) : ''),
      );
    }
    box.append(
      el('div', { class: 'ring-row' },
        el('span', { class: 'ring-label', text: `ring ${i} (${r.flags.length} entries; ${lo}..${hi - 1} shown): dirty_index ${r.dirtyIndex}, reset_index ${r.resetIndex}` }),
        el('table', { class: 'entries', 'aria-label': `ring ${i} entries` }, el('tr', {}, ...cells)),
      ),
    );
  }
  return box;
}

/** The pages of the checked memslot. */
export function renderPages(s: StepSnapshot, prev: StepSnapshot | null): HTMLElement {
  const head = el('tr', {}, el('th', { text: 'page' }), ...s.writable.map((_, p) => el('th', { text: String(p) })));
  const row = (name: string, values: number[], old: number[] | undefined, fmt: (v: number) => string): HTMLElement =>
    el('tr', {}, el('th', { text: name }), ...values.map((v, p) => el('td', { class: old !== undefined && old[p] !== v ? 'changed' : '', text: fmt(v) })));
  return el(
    'table',
    { class: 'pages', 'aria-label': 'Pages of the checked memslot' },
    head,
    row('SPTE', s.writable, prev?.writable, (v) => (v ? 'W' : 'P')),
    row('dirty bit', s.dirtyBit, prev?.dirtyBit, (v) => (v ? '1' : '·')),
    row('stamp', s.stamp, prev?.stamp, (v) => (v ? String(v) : '·')),
  );
}

/** What the move changed, one line per change. */
export function describeChanges(s: StepSnapshot, prev: StepSnapshot | null): string[] {
  if (prev === null) return ['the start: every participant parked at its first step'];
  const out: string[] = [];
  for (const [i, r] of s.rings.entries()) {
    const p = prev.rings[i]!;
    if (p.dirtyIndex !== r.dirtyIndex) out.push(`ring ${i}: dirty_index ${p.dirtyIndex} → ${r.dirtyIndex}`);
    if (p.resetIndex !== r.resetIndex) out.push(`ring ${i}: reset_index ${p.resetIndex} → ${r.resetIndex}`);
    for (let e = 0; e < r.flags.length; e++) {
      if (p.flags[e] !== r.flags[e] || p.offsets[e] !== r.offsets[e]) out.push(`ring ${i} entry ${e}: ${entryState(p, e)} → ${entryState(r, e)} (page ${r.offsets[e]})`);
    }
  }
  for (let pg = 0; pg < s.writable.length; pg++) {
    if (prev.writable[pg] !== s.writable[pg]) out.push(`SPTE of page ${pg}: ${s.writable[pg] ? 'made writable' : 'write-protected'}`);
    if (prev.dirtyBit[pg] !== s.dirtyBit[pg]) out.push(`dirty bit of page ${pg}: ${s.dirtyBit[pg] ? 'set' : 'cleared'}`);
    if (prev.stamp[pg] !== s.stamp[pg]) out.push(`page ${pg} written (iteration ${s.stamp[pg]})`);
  }
  if (out.length === 0) out.push('no change to rings, SPTEs or memory (a lock, a request, a wait, or a modelled access in flight)');
  return out;
}
