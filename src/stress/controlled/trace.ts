/**
 * A controlled run's trace: at every step, who moved and from which step point. Two runs are
 * the same run exactly when their traces are equal; the hash makes that cheap to compare and
 * to print.
 */
import { isReadFromChoice, readFromIndex } from './choosers.js';
import { type Roster, participantName, participantNumber, stepName, stepNumber } from './control-steps.js';

/** [participant, step point, arg a, arg b] */
export type TraceEntry = readonly [number, number, number, number];

/** 32-bit FNV-1a's parameters. */
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const BYTES_PER_NUMBER = 4;
const HEX_DIGITS = 8;

/** FNV-1a over the trace's numbers (each as 4 little-endian bytes), as 8 hex digits. */
export function traceHash(trace: readonly TraceEntry[]): string {
  let h = FNV_OFFSET_BASIS;
  const mix = (x: number): void => {
    let v = x | 0;
    for (let i = 0; i < BYTES_PER_NUMBER; i++) {
      h ^= v & 0xff;
      h = Math.imul(h, FNV_PRIME);
      v >>>= 8;
    }
  };
  for (const e of trace) {
    mix(e[0]);
    mix(e[1]);
    mix(e[2]);
    mix(e[3]);
  }
  return (h >>> 0).toString(16).padStart(HEX_DIGITS, '0');
}

/** One line per step: `12 v0 fault-make-writable 262149 0` (a read-from step: location, then the store read). */
export function formatTrace(trace: readonly TraceEntry[], roster?: Roster): string[] {
  return trace.map((e, i) => `${String(i).padStart(5)} ${participantName(e[0], roster).padEnd(3)} ${stepName(e[1])} ${e[2]} ${e[3]}`);
}

const TRACE_LINE = /^\s*(\d+) (\S+)\s+(\S+) (-?\d+) (-?\d+)$/;

/**
 * A line of formatTrace read back (the `index`-th line), or a reason it is not one: a schedule
 * file's trace is checked against its hash, so that an edited trace cannot pass for a recording.
 */
export function parseTraceLine(line: unknown, index: number, roster: Roster): TraceEntry | string {
  const m = typeof line === 'string' ? TRACE_LINE.exec(line) : null;
  if (m === null) return 'not a trace line (index, participant, step point, two numbers)';
  if (Number(m[1]) !== index) return `numbered ${m[1]}, not ${index}`;
  const p = participantNumber(m[2]!, roster);
  if (p === undefined) return `no participant ${m[2]} in this scenario`;
  const step = stepNumber(m[3]!);
  if (step === undefined) return `no step point ${m[3]}`;
  const a = Number(m[4]);
  const b = Number(m[5]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) return 'its numbers are not exact integers';
  return [p, step, a, b];
}

/**
 * Choices compactly: runs of one participant as `v0x3`, read-from decisions as `~i` (the i-th
 * newest store; `~0` is the newest), e.g. `U v0x3 v1 ~1 U`.
 */
export function formatChoices(choices: readonly number[], roster?: Roster): string {
  if (choices.length === 0) return '(no decisions: every participant runs until it has to wait)';
  const out: string[] = [];
  for (let i = 0; i < choices.length; ) {
    let j = i;
    while (j < choices.length && choices[j] === choices[i]) j++;
    const c = choices[i]!;
    const name = isReadFromChoice(c) ? `~${readFromIndex(c)}` : participantName(c, roster);
    out.push(j - i > 1 ? `${name}x${j - i}` : name);
    i = j;
  }
  return out.join(' ');
}
