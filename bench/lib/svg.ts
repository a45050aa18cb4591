/**
 * A small log-log line chart written as SVG text: one polyline per series, a dot per point and
 * a vertical bar from its p25 to its p75. No plotting dependency; the output is plain SVG 1.1
 * that browsers, GitHub and the app can show.
 */
import type { Curve } from './report.js';

const W = 720;
const H = 440;
const M = { left: 78, right: 24, top: 48, bottom: 64 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmtBytes(x: number): string {
  if (x >= 2 ** 30) return `${+(x / 2 ** 30).toFixed(2)} GiB`;
  if (x >= 2 ** 20) return `${+(x / 2 ** 20).toFixed(2)} MiB`;
  if (x >= 2 ** 10) return `${+(x / 2 ** 10).toFixed(2)} KiB`;
  return `${x} B`;
}

function fmtCount(x: number): string {
  if (x >= 1e6 && x % 1e5 === 0) return `${x / 1e6}M`;
  if (x >= 1e4 && x % 1024 === 0) return `${x / 1024}Ki`;
  return String(x);
}

function fmtY(us: number): string {
  if (us >= 1000) return `${+(us / 1000).toPrecision(3)} ms`;
  if (us >= 1) return `${+us.toPrecision(3)} µs`;
  return `${Math.round(us * 1000)} ns`;
}

export function renderSvg(curve: Curve): string {
  const pts = curve.series.flatMap((s) => s.points);
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const yVals = pts.flatMap((p) => [p.y, p.lo, p.hi]).filter((y) => Number.isFinite(y) && y > 0);
  if (xs.length === 0 || yVals.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">${esc(curve.title)}: no data</text></svg>\n`;
  const lx0 = Math.log10(xs[0]!);
  const lx1 = Math.log10(xs[xs.length - 1]!);
  const ly0 = Math.floor(Math.log10(Math.min(...yVals)));
  const ly1 = Math.ceil(Math.log10(Math.max(...yVals)));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + (lx1 === lx0 ? pw / 2 : ((Math.log10(x) - lx0) / (lx1 - lx0)) * pw);
  const sy = (y: number): number => M.top + ph - ((Math.log10(Math.max(y, 10 ** ly0)) - ly0) / Math.max(1, ly1 - ly0)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(curve.title)}</text>`);
  // Horizontal grid: decades labelled, 2 and 5 faint.
  for (let d = ly0; d <= ly1; d++) {
    for (const m of [1, 2, 5]) {
      const y = m * 10 ** d;
      if (d === ly1 && m > 1) continue;
      const py = sy(y);
      out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" stroke="${m === 1 ? '#bbbbbb' : '#eeeeee'}"/>`);
      if (m === 1 || ly1 - ly0 <= 2) {
        out.push(`<text x="${M.left - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${esc(fmtY(y))}</text>`);
      }
    }
  }
  // Vertical grid at every measured x.
  for (const x of xs) {
    const px = sx(x);
    out.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${M.top}" y2="${M.top + ph}" stroke="#eeeeee"/>`);
    const label = curve.xUnit === 'bytes' ? fmtBytes(x) : fmtCount(x);
    out.push(`<text x="${px.toFixed(1)}" y="${M.top + ph + 16}" text-anchor="middle">${esc(label)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 26}" text-anchor="middle">${esc(curve.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(curve.yLabel)}</text>`);
  curve.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const ok = s.points.filter((p) => Number.isFinite(p.y) && p.y > 0);
    if (ok.length > 1) {
      const d = ok.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${d}"/>`);
    }
    for (const p of ok) {
      const px = sx(p.x).toFixed(1);
      if (Number.isFinite(p.lo) && Number.isFinite(p.hi) && p.lo > 0) {
        out.push(`<line x1="${px}" x2="${px}" y1="${sy(p.hi).toFixed(1)}" y2="${sy(p.lo).toFixed(1)}" stroke="${color}" stroke-width="1"/>`);
      }
      out.push(`<circle cx="${px}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name}: ${fmtY(p.y)}`)}</title></circle>`);
    }
    const ly = M.top + 16 + i * 18;
    out.push(`<line x1="${M.left + 12}" x2="${M.left + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${M.left + 42}" y="${ly}">${esc(s.name)}</text>`);
  });
  if (curve.note) out.push(`<text x="${M.left}" y="${H - 8}" font-size="11" fill="#555555">${esc(curve.note)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
