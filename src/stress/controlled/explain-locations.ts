/** Names of modelled locations in explanations: ring entry fields, SPTEs, bitmap words. */
import type { ModelEvent } from '../../kernel/wmm/events.js';
import type { WmmLocations } from '../../kernel/wmm/locations.js';

/** A run's model events and the numbering of its locations. */
export interface ExplainMemory {
  readonly events: readonly ModelEvent[];
  readonly locs: WmmLocations;
}

export function entryName(ring: number, entry: number): string {
  return `v${ring}ring[${entry}]`;
}

export interface LocName {
  readonly name: string;
  /** Ring entries: which field, and the entry's key (`ring:entry`). */
  readonly field: 'flags' | 'slot' | 'offset' | 'other';
  readonly key: string;
}

export function nameOf(locs: WmmLocations, loc: number): LocName | null {
  const r = locs.regionOf(loc);
  if (r === undefined) return null;
  const i = loc - r.base;
  if (r.kind === 'spte') return { name: `spte[${i}]`, field: 'other', key: `spte:${i}` };
  if (r.kind === 'bitmap') return { name: `bitmap word ${i}`, field: 'other', key: `bitmap:${i}` };
  if (r.kind === 'shared') return { name: `kvm.shared[${i}]`, field: 'other', key: `shared:${i}` };
  const fields = ['flags', 'slot', 'offset'] as const;
  const f = Math.floor(i / r.size);
  if (f >= fields.length) return { name: `v${r.owner} ${i - 3 * r.size === 0 ? 'dirty_index' : 'reset_index'}`, field: 'other', key: `index:${r.owner}` };
  const entry = i % r.size;
  return { name: `${entryName(r.owner, entry)}.${fields[f]}`, field: fields[f]!, key: `${r.owner}:${entry}` };
}

