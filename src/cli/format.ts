/** Plain-text formatting for the CLI: aligned tables, compact numbers, names run and migrate share. */
import { DEVICE_WRITER_BASE } from '../guest/guest-memory.js';
import type { GuestShape } from '../harness/run-config.js';

export const MiB = 2 ** 20;
export const MS_PER_S = 1000;
const US_PER_MS = 1000;

/** Milliseconds as seconds with `digits` decimals (the unit is the caller's to print). */
export function msAsSeconds(ms: number, digits: number): string {
  return (ms / MS_PER_S).toFixed(digits);
}

/** Microseconds as milliseconds with `digits` decimals. */
export function usAsMs(us: number, digits: number): string {
  return (us / US_PER_MS).toFixed(digits);
}

export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}

/**
 * The length of the longest string, at least `floor`. A loop, not Math.max(...spread): a spread
 * passes every element as an argument, and a few hundred thousand overflow the stack.
 */
export function widest(strings: Iterable<string>, floor = 0): number {
  let w = floor;
  for (const s of strings) if (s.length > w) w = s.length;
  return w;
}

/**
 * Render rows as a table with a header, columns padded to their widest cell. By default the
 * first column is left-aligned and the others right-aligned; `align` ('l' or 'r' per column)
 * overrides that (the stress outcome tables have text columns).
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const widths = header.map((h, c) => widest(rows.map((r) => r[c] ?? ''), h.length));
  const left = (c: number): boolean => (align?.[c] ?? (c === 0 ? 'l' : 'r')) === 'l';
  const line = (cells: readonly string[]): string =>
    cells.map((cell, c) => (left(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The logging interface a run or migration configured, in one phrase for its header line. */
export function logDescription(c: Pick<GuestShape, 'log' | 'ringEntries' | 'ringWithBitmap' | 'clearChunkPages' | 'initiallySet'>): string {
  if (c.log === 'ring') return `${c.ringEntries}-entry dirty rings${c.ringWithBitmap ? ' + ring-with-bitmap' : ''}`;
  if (c.log === 'bitmap') return 'legacy KVM_GET_DIRTY_LOG';
  return `manual protect (GET, CLEAR per ${c.clearChunkPages} pages just before copying them${c.initiallySet ? ', initially set' : ''})`;
}

/** A writer id as the kernel's log knows it: vCPU ids, then DMA devices from DEVICE_WRITER_BASE. */
export function writerName(id: number): string {
  return id >= DEVICE_WRITER_BASE ? `device ${id - DEVICE_WRITER_BASE}` : `vCPU ${id}`;
}

/**
 * Where a command's human-readable lines go: stdout, or stderr with --json, so that stdout
 * holds only the JSON line.
 */
export function humanOutput(json: boolean): (s: string) => void {
  return json ? (s: string) => process.stderr.write(`${s}\n`) : (s: string) => process.stdout.write(`${s}\n`);
}
