/**
 * Summary statistics over repeats: median, quartiles, extremes, and a relative spread.
 * Every figure in the bench is reported through `summarize`.
 */

export interface Summary {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
  readonly min: number;
  readonly max: number;
  /** Interquartile range over the median (0.1 = the middle half lies within ±5 %). */
  readonly spread: number;
  readonly n: number;
}

/** Linear-interpolated quantile of an ascending array. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, p25: NaN, p75: NaN, min: NaN, max: NaN, spread: NaN, n: 0 };
  const median = quantile(s, 0.5);
  const p25 = quantile(s, 0.25);
  const p75 = quantile(s, 0.75);
  return {
    median,
    p25,
    p75,
    min: s[0]!,
    max: s[s.length - 1]!,
    spread: median !== 0 ? (p75 - p25) / Math.abs(median) : 0,
    n: s.length,
  };
}

/** Element-wise ratio of paired samples (same repeat index). */
export function pairedRatios(num: readonly number[], den: readonly number[]): number[] {
  const n = Math.min(num.length, den.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(num[i]! / den[i]!);
  return out;
}

/** Round for output: 4 significant digits. */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}
