/**
 * What the bench produces: figures (an emulator measurement, the baseline measured next to it in
 * the same process run, their ratio and the target), scaling curves, and skipped items; the
 * table on stdout and the JSON document are rendered from here.
 *
 * Ratio convention: always "emulator speed relative to the baseline's", paired per repeat.
 * For rates (higher is better) that is emulator / baseline; for times (lower is better) it is
 * baseline / emulator. So "≥ 0.5" reads "at least half as fast" whatever the unit, and
 * "within 2× of the kernel" is a ratio ≥ 0.5.
 */
import { type Summary, pairedRatios, sig, summarize } from './stats.js';

export type Better = 'higher' | 'lower';

export interface TargetSpec {
  /** Human text, e.g. "≥ 100 % of ringbuf.js". */
  readonly text: string;
  /** Met when the median ratio is at least this. */
  readonly minRatio?: number;
  /** Met when the median value is at most this (absolute, in the figure's unit). */
  readonly maxValue?: number;
}

export interface FigureInput {
  readonly id: string;
  readonly section: string;
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly samples: readonly number[];
  readonly baseline?: { readonly name: string; readonly samples: readonly number[] };
  readonly target?: TargetSpec;
  readonly note?: string;
  /** Extra numbers worth keeping (counts, sizes). */
  readonly extra?: Readonly<Record<string, number | string | boolean>>;
}

export interface Figure {
  readonly id: string;
  readonly section: string;
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly value: Summary;
  readonly baseline: (Summary & { readonly name: string }) | null;
  readonly ratio: Summary | null;
  readonly target: (TargetSpec & { readonly met: boolean }) | null;
  readonly note: string | null;
  readonly extra: Readonly<Record<string, number | string | boolean>> | null;
  readonly samples: readonly number[];
  readonly baselineSamples: readonly number[] | null;
}

export interface CurvePoint {
  readonly x: number;
  readonly y: number;
  readonly lo: number;
  readonly hi: number;
}

export interface CurveSeries {
  readonly name: string;
  readonly points: readonly CurvePoint[];
}

export interface Curve {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xUnit: 'bytes' | 'count';
  readonly series: readonly CurveSeries[];
  readonly note?: string;
}

export class Reporter {
  readonly figures: Figure[] = [];
  readonly curves: Curve[] = [];
  readonly skipped: { readonly section: string; readonly reason: string }[] = [];

  add(input: FigureInput): Figure {
    const value = summarize(input.samples);
    const baseline = input.baseline ? { name: input.baseline.name, ...summarize(input.baseline.samples) } : null;
    let ratio: Summary | null = null;
    if (input.baseline) {
      const r =
        input.better === 'higher'
          ? pairedRatios(input.samples, input.baseline.samples)
          : pairedRatios(input.baseline.samples, input.samples);
      ratio = summarize(r);
    }
    let target: Figure['target'] = null;
    if (input.target) {
      let met = true;
      if (input.target.minRatio !== undefined) met = met && ratio !== null && ratio.median >= input.target.minRatio;
      if (input.target.maxValue !== undefined) met = met && value.median <= input.target.maxValue;
      target = { ...input.target, met };
    }
    const fig: Figure = {
      id: input.id,
      section: input.section,
      name: input.name,
      unit: input.unit,
      better: input.better,
      value,
      baseline,
      ratio,
      target,
      note: input.note ?? null,
      extra: input.extra ?? null,
      samples: input.samples.map((x) => sig(x, 6)),
      baselineSamples: input.baseline ? input.baseline.samples.map((x) => sig(x, 6)) : null,
    };
    this.figures.push(fig);
    return fig;
  }

  addCurve(curve: Curve): void {
    this.curves.push(curve);
  }

  skip(section: string, reason: string): void {
    this.skipped.push({ section, reason });
  }
}

/** A number with its unit, scaled for reading: 12.3 M/s, 4.56 µs, 1.2 ms. */
export function formatValue(x: number, unit: string): string {
  if (!Number.isFinite(x)) return String(x);
  if (unit === 'us') {
    if (x >= 1000) return `${sig(x / 1000, 3)} ms`;
    return `${sig(x, 3)} µs`;
  }
  if (unit.endsWith('/s')) {
    const u = unit.slice(0, -2);
    if (x >= 1e9) return `${sig(x / 1e9, 3)} G${u}/s`;
    if (x >= 1e6) return `${sig(x / 1e6, 3)} M${u}/s`;
    if (x >= 1e3) return `${sig(x / 1e3, 3)} k${u}/s`;
    return `${sig(x, 3)} ${u}/s`;
  }
  if (unit === '%') return `${sig(x, 3)} %`;
  return `${sig(x, 4)} ${unit}`;
}

/** A ratio as a percentage with one decimal: 0.1234 → "12.3 %". */
export function pct(x: number): string {
  return `${Math.round(x * 1000) / 10} %`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The stdout table: one row per figure, grouped by section. */
export function renderTable(figures: readonly Figure[]): string {
  const rows: string[][] = [['figure', 'emulator (median ±½IQR)', 'baseline (median)', 'ratio (median [p25–p75])', 'target', '']];
  let section = '';
  const out: string[] = [];
  const sectionRows: { section: string; row: string[] }[] = [];
  for (const f of figures) {
    const v = `${formatValue(f.value.median, f.unit)} ±${Math.round(f.value.spread * 50)}%`;
    const b = f.baseline ? `${formatValue(f.baseline.median, f.unit)} ${f.baseline.name}` : '—';
    const r = f.ratio ? `${pct(f.ratio.median)} [${pct(f.ratio.p25)}–${pct(f.ratio.p75)}]` : '—';
    const t = f.target ? f.target.text : '';
    const m = f.target ? (f.target.met ? 'MET' : 'MISSED') : '';
    sectionRows.push({ section: f.section, row: [f.name, v, b, r, t, m] });
  }
  const all = [...rows, ...sectionRows.map((s) => s.row)];
  const widths = all[0]!.map((_, c) => Math.min(60, Math.max(...all.map((r) => r[c]!.length))));
  const line = (r: string[]): string => r.map((cell, c) => pad(cell, widths[c]!)).join('  ').trimEnd();
  out.push(line(rows[0]!));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const s of sectionRows) {
    if (s.section !== section) {
      section = s.section;
      out.push(`[${section}]`);
    }
    out.push(line(s.row));
  }
  return out.join('\n');
}
