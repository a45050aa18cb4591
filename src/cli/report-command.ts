/**
 * `dirtyring report merge`: the reports of a campaign's shards (each machine, pod or CI job ran
 * `stress --shard i/n`) into one outcome table, one JSON report and one JUnit file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import { mergeJunit } from '../stress/junit-merge.js';
import { type MergedReport, STRESS_REPORT_FORMAT, mergeReports } from '../stress/report-merge.js';
import { type StressReport, writeJsonReport, writeJunit } from '../stress/report.js';
import { humanOutput } from './format.js';
import { checkOutputFile } from './output-paths.js';
import { campaignLines, mutantTableLines } from './stress-output.js';

export const REPORT_USAGE = `usage: dirtyring report merge [options] FILE...

Merge the reports of the shards of one stress campaign (\`stress --shard i/n --report F
--junit X\` on n machines) into the campaign's outcome table: the runs of every shard, in
campaign order, counted again — the same table as the campaign run unsharded. Missing or
repeated shards are reported and fail the merge.

  FILE                    a shard's JSON report (--report) or JUnit file (--junit); JSON
                          reports give the outcome table, JUnit files are merged into one
  --report FILE           write the merged JSON report
  --junit FILE            write the merged JUnit XML (from the JUnit files given, or else
                          from the JSON reports)
  --json                  print one JSON summary as the last line of stdout
  -h, --help              this help

Exit status: 0 every shard there and no forbidden or error run (every mutant caught), 1
otherwise, 2 bad input.`;

interface Inputs {
  readonly reports: StressReport[];
  readonly junit: Map<string, string>;
}

export async function reportCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    console.log(REPORT_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'merge') throw new ConfigError('report', sub, 'EINVAL', 'the only subcommand is merge');
  const { values, positionals } = parseArgs({
    args: rest,
    options: { report: { type: 'string' }, junit: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(REPORT_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new ConfigError('FILE', '(none)', 'EINVAL', 'give the shard reports to merge');
  if (values.report !== undefined) checkOutputFile('--report', values.report);
  if (values.junit !== undefined) checkOutputFile('--junit', values.junit);
  const inputs = readInputs(positionals);
  const out = humanOutput(values.json === true);
  const merged = inputs.reports.length > 0 ? mergeReports(inputs.reports, ['report', 'merge', ...argv.slice(1)]) : null;
  if (merged !== null) printMerged(merged, inputs.reports.length, out);
  if (values.report !== undefined) {
    if (merged === null) throw new ConfigError('--report', values.report, 'EINVAL', 'a merged JSON report needs JSON shard reports');
    writeJsonReport(values.report, merged.report);
    out(`report: ${values.report}`);
  }
  if (values.junit !== undefined) {
    if (inputs.junit.size > 0) writeFileSync(values.junit, mergeJunit(inputs.junit));
    else writeJunit(values.junit, merged!.report);
    out(`junit: ${values.junit}`);
  }
  const ok = merged?.report.ok ?? junitOk(inputs.junit);
  out(verdict(merged, inputs, ok));
  if (values.json === true) process.stdout.write(`${JSON.stringify(summary(merged, inputs, ok))}\n`);
  return ok ? 0 : 1;
}

function readInputs(files: readonly string[]): Inputs {
  const reports: StressReport[] = [];
  const junit = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as { code?: string }).code === 'EISDIR' ? 'EISDIR' : 'ENOENT';
      throw new ConfigError('FILE', file, code, 'cannot read the shard report');
    }
    if (text.trimStart().startsWith('<')) {
      junit.set(file, text);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigError('FILE', file, 'EINVAL', 'neither a JSON report nor a JUnit file');
    }
    if ((parsed as { format?: unknown }).format !== STRESS_REPORT_FORMAT) {
      throw new ConfigError('FILE', file, 'EINVAL', `not a stress report (format ${STRESS_REPORT_FORMAT} expected)`);
    }
    reports.push(parsed as StressReport);
  }
  return { reports, junit };
}

function printMerged(m: MergedReport, files: number, out: (s: string) => void): void {
  const r = m.report;
  for (const c of r.campaigns.filter((x) => x.mutant === null)) {
    const what = c.mode === 'free' ? 'free-running real threads' : `controlled, ${c.strategy} strategy`;
    out(`dirtyring report merge: ${what}, ${c.runs} runs merged from ${files} report(s), seed ${c.seed}`);
    for (const line of campaignLines(c)) out(line);
  }
  if (r.mutants.length > 0) for (const line of mutantTableLines(r.mutants, [...new Set(r.mutants.map((v) => v.mode))])) out(line);
  for (const p of m.problems) out(`INCOMPLETE: ${p}`);
}

/** Without JSON reports: the JUnit files' own counts. */
function junitOk(junit: ReadonlyMap<string, string>): boolean {
  const merged = mergeJunit(junit);
  return /<testsuites[^>]*\bfailures="0" errors="0"/.test(merged);
}

function verdict(m: MergedReport | null, inputs: Inputs, ok: boolean): string {
  const files = inputs.reports.length + inputs.junit.size;
  if (m === null) return `${ok ? 'OK' : 'FAILED'}: ${inputs.junit.size} JUnit file(s) merged${ok ? ', no failure or error' : ', with failures or errors'}`;
  const runs = m.report.campaigns.reduce((n, c) => n + c.runs, 0);
  const forbidden = m.report.campaigns.filter((c) => c.mutant === null).reduce((n, c) => n + c.classes.forbidden, 0);
  const errors = m.report.campaigns.filter((c) => c.mutant === null).reduce((n, c) => n + c.classes.error, 0);
  if (ok) return `OK: ${runs} runs merged from ${files} file(s), 0 forbidden, 0 errors${m.report.mutants.length > 0 ? ', every mutant caught where modelled' : ''}`;
  if (m.problems.length > 0) return `FAILED: the merge is not the whole campaign — ${m.problems.join('; ')}`;
  return `FAILED: ${forbidden} forbidden, ${errors} error run(s) in ${runs} merged runs${m.report.mutants.some((v) => !v.caught && v.notApplicable === undefined) ? ', a mutant not caught' : ''}`;
}

function summary(m: MergedReport | null, inputs: Inputs, ok: boolean): object {
  const campaigns = m?.report.campaigns ?? [];
  return {
    ok,
    files: inputs.reports.length + inputs.junit.size,
    runs: campaigns.reduce((n, c) => n + c.runs, 0),
    campaigns: campaigns.map((c) => ({ mode: c.mode, strategy: c.strategy, mutant: c.mutant, seed: c.seed, runs: c.runs, classes: c.classes, table: c.table })),
    mutants: m?.report.mutants ?? [],
    problems: m?.problems ?? [],
  };
}
