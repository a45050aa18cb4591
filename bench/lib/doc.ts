/**
 * `--update-docs`: replace the generated block of docs/PERFORMANCE.md (between the
 * `<!-- bench:figures:begin -->` and `<!-- bench:figures:end -->` markers) with the figures of
 * this run. The rest of the document is written by hand.
 */
import type { Figure } from './report.js';
import { formatValue, pct } from './report.js';

const BEGIN = '<!-- bench:figures:begin -->';
const END = '<!-- bench:figures:end -->';

interface DocInput {
  readonly generatedAt: string;
  readonly mode: string;
  readonly durationMs: number;
  readonly node: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly kernel: string };
  readonly figures: readonly Figure[];
  readonly skipped: readonly { readonly section: string; readonly reason: string }[];
}

export function renderDocFigures(markdown: string, doc: DocInput): string {
  const lines: string[] = [];
  lines.push(BEGIN);
  lines.push('');
  lines.push(
    `Run: \`npm run bench${doc.mode === 'quick' ? ' -- --quick' : ''}\`, ${doc.generatedAt.slice(0, 16).replace('T', ' ')} UTC, ` +
      `${doc.machine.cpus} × ${doc.machine.cpuModel}, kernel ${doc.machine.kernel}, Node ${doc.node}, ${(doc.durationMs / 1000).toFixed(0)} s.`,
  );
  lines.push('');
  lines.push('| figure | emulator (median) | baseline (median) | ratio: median [p25–p75] | target | |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  let section = '';
  for (const f of doc.figures) {
    if (f.section !== section) {
      section = f.section;
      lines.push(`| **${section}** | | | | | |`);
    }
    const base = f.baseline ? `${formatValue(f.baseline.median, f.unit)} (${f.baseline.name})` : '—';
    const ratio = f.ratio ? `${pct(f.ratio.median)} [${pct(f.ratio.p25)}–${pct(f.ratio.p75)}]` : '—';
    const met = f.target ? (f.target.met ? 'met' : '**missed**') : '';
    lines.push(`| ${f.name} | ${formatValue(f.value.median, f.unit)} | ${base} | ${ratio} | ${f.target?.text ?? ''} | ${met} |`);
  }
  for (const s of doc.skipped) lines.push(`\nSkipped: ${s.section}: ${s.reason}`);
  lines.push('');
  lines.push(END);
  const block = lines.join('\n');
  const a = markdown.indexOf(BEGIN);
  const b = markdown.indexOf(END);
  if (a < 0 || b < a) return `${markdown.trimEnd()}\n\n${block}\n`;
  return markdown.slice(0, a) + block + markdown.slice(b + END.length);
}
