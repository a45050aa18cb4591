/**
 * Fidelity scenarios and their results as text: one line per step, with what the step did and
 * what it returned, and the kernel's verdict in a word.
 */
import type { Scenario, Step, StepResult } from '../fidelity/scenario.js';
import type { KernelOutcome } from '../fidelity/suite.js';
import { widest } from './format.js';

/** 0,1,2,5,7,8,9 → "0-2 5 7-9". */
function ranges(ns: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(j === i ? `${ns[i]}` : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(' ');
}

/** Entries as slot:offset, consecutive offsets of one slot as slot:a-b. */
function entryList(entries: readonly { slot: number; offset: number | string }[]): string {
  const out: string[] = [];
  for (let i = 0; i < entries.length; ) {
    const e = entries[i]!;
    let j = i;
    if (typeof e.offset === 'number') {
      while (j + 1 < entries.length) {
        const n = entries[j + 1]!;
        const cur = entries[j]!.offset;
        if (n.slot !== e.slot || typeof n.offset !== 'number' || typeof cur !== 'number' || n.offset !== cur + 1) break;
        j++;
      }
    }
    out.push(j === i ? `${e.slot}:${e.offset}` : `${e.slot}:${e.offset}-${entries[j]!.offset}`);
    i = j + 1;
  }
  return out.join(' ');
}

function formatResult(r: StepResult): string {
  if ('errno' in r) return r.errno;
  const parts: string[] = [];
  if (r.exit !== undefined) parts.push(`exit ${r.exit}`);
  if (r.count !== undefined) parts.push(`count ${r.count}`);
  if (r.value !== undefined) parts.push(`value ${r.value}`);
  if (r.pages !== undefined) parts.push(`pages (${r.pages.length})${r.pages.length ? `: ${ranges(r.pages)}` : ''}`);
  if (r.entries !== undefined) parts.push(`entries (${r.entries.length})${r.entries.length ? `: ${entryList(r.entries)}` : ''}`);
  if (r.entry !== undefined) parts.push(`entry flags ${r.entry.flags} slot ${r.entry.slot} offset ${r.entry.offset}`);
  return parts.length ? parts.join(', ') : 'ok';
}

function formatStep(st: Step): string {
  const slot = (s: number, as: number): string => (as ? `slot ${s} as ${as}` : `slot ${s}`);
  switch (st.op) {
    case 'write':
      return `write vcpu ${st.vcpu} ${slot(st.slot, st.asId)} pages ${ranges(st.pages)}${st.storesPerPage > 1 ? ` x${st.storesPerPage}` : ''}${st.exitEach ? ' exitEach' : ''}`;
    case 'read':
      return `read vcpu ${st.vcpu} ${slot(st.slot, st.asId)} pages ${ranges(st.pages)}${st.exitEach ? ' exitEach' : ''}`;
    case 'run':
      return `run vcpu ${st.vcpu}${st.stopOnIo ? ' stopOnIo' : ''}`;
    case 'harvest':
      return `harvest vcpu ${st.vcpu}${st.max !== undefined ? ` max ${st.max}` : ''}${st.flagsValue !== 2 ? ` flags ${st.flagsValue}` : ''}`;
    case 'reset':
      return 'reset';
    case 'getDirtyLog':
      return `getDirtyLog ${slot(st.slot, st.asId)}${st.nullBitmap ? ' NULL' : ''}`;
    case 'clearDirtyLog':
      return `clearDirtyLog ${slot(st.slot, st.asId)} first ${st.first} num ${st.num}${st.pages.length ? ` pages ${ranges(st.pages)}` : ''}${st.nullBitmap ? ' NULL' : ''}`;
    case 'setMemslot':
      return `setMemslot ${slot(st.slot, st.asId)} ${st.delete ? 'delete' : st.logDirty ? 'log on' : 'log off'}`;
    case 'enableCap':
      return `enableCap ${st.cap} ${st.bytes !== undefined ? st.bytes : (st.flags ?? 0)}${st.capFlags ? ` capFlags ${st.capFlags}` : ''}`;
    case 'createVcpu':
      return 'createVcpu';
    case 'writeEntry':
      return `writeEntry vcpu ${st.vcpu} [${st.index}]${st.flags !== undefined ? ` flags ${st.flags}` : ''}${st.slot !== undefined ? ` slot ${st.slot}` : ''}${st.offset !== undefined ? ` offset ${st.offset}` : ''}`;
    case 'readEntry':
      return `readEntry vcpu ${st.vcpu} [${st.index}]`;
    case 'checkExtension':
      return `checkExtension ${st.cap}`;
    case 'mmapRing':
      return `mmapRing vcpu ${st.vcpu} ${st.shared ? 'shared' : 'private'} ${st.write ? 'rw' : 'ro'}${st.exec ? ' exec' : ''}`;
  }
}

/** A step's description is cut to this many characters, so that the results line up close to it. */
const STEP_COLUMN_CHARS = 48;
/** ...and the column is never narrower than a short word (`run`, `reset`). */
const MIN_STEP_COLUMN_CHARS = 4;

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** One line per step: its index, what it did, what it returned. */
export function stepLines(s: Scenario, results: readonly StepResult[]): string[] {
  const descs = s.steps.map((st) => clip(formatStep(st), STEP_COLUMN_CHARS));
  const w = widest(descs, MIN_STEP_COLUMN_CHARS);
  const iw = String(s.steps.length - 1).length;
  return results.map((r, i) => `  ${String(i).padStart(iw)}  ${(descs[i] ?? '').padEnd(w)}  ${formatResult(r)}`);
}

export function header(s: Scenario, file: string): string {
  return `scenario: ${s.name} (${file}), path ${s.path}`;
}

export function kernelVerdict(k: KernelOutcome, differences: readonly string[]): string {
  switch (k.kind) {
    case 'results':
      return differences.length === 0 ? 'match' : 'DIFFER';
    case 'notComparable':
      return 'not comparable';
    case 'unavailable':
      return `kvm unavailable: ${k.reason}`;
    case 'failed':
      return `kvm run FAILED: ${k.reason.split('\n')[0]}`;
  }
}
