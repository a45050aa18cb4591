/**
 * What `dirtyring stress` prints: a campaign's header and outcome table, the failing runs with
 * their schedules and how to replay them, the mutant table and mutation score, the final
 * verdict line, and the JSON summary of --json.
 */
import type { CampaignResult } from '../stress/campaign.js';
import { type CampaignSpec, campaignMemoryModel } from '../stress/campaign-spec.js';
import type { CaseSize } from '../stress/controlled/shrink.js';
import { OUTCOMES } from '../stress/outcome.js';
import type { MutantVerdict, MutationScore, StressReport } from '../stress/report.js';
import type { RunRecord } from '../stress/run-record.js';
import type { StressMode } from '../stress/stress-mode.js';
import { coverageJson, coverageLines, unreachedLines } from './coverage-output.js';
import { msAsSeconds, table } from './format.js';
import { formatExplanation } from '../stress/controlled/explain.js';
import type { StressOptions } from './stress-options.js';

/** A schedule or detail longer than this is cut in a text line (the report keeps it whole). */
const CLIP_CHARS = 160;
const DETAIL_CLIP_CHARS = 300;
/** Failing runs described in the text output, and listed in the JSON summary (the report has all). */
const FAILURES_PRINTED = 10;
const FAILURES_IN_JSON = 20;

export function describeCampaign(spec: CampaignSpec): string {
  const params = spec.strategy === 'pct' ? ` (depth ${spec.pctDepth})` : spec.strategy === 'dfs' ? ` (preemption bound ${spec.preemptionBound})` : '';
  const model = campaignMemoryModel(spec);
  const what = spec.mode === 'free' ? 'free-running real threads' : `controlled, ${spec.strategy} strategy${params}${model !== 'sc' ? `, memory model ${model}` : ''}`;
  const size = spec.runs !== null ? `${spec.runs} runs` : 'runs';
  const budget = spec.timeBudgetMs !== null ? ` within ${msAsSeconds(spec.timeBudgetMs, 0)}s` : '';
  return `${what}, ${size}${budget}${spec.shard ? `, shard ${spec.shard.index}/${spec.shard.count}` : ''}${spec.log ? `, --log ${spec.log}` : ''}` +
    `${spec.userHarvester ? `, harvester ${spec.userHarvester.name} (--log ${spec.userHarvester.log})` : ''}, seed ${spec.seed}`;
}

function clip(s: string, max = CLIP_CHARS): string {
  return s.length > max ? `${s.slice(0, max)} …` : s;
}

function sizeLine(s: CaseSize): string {
  const stale = s.staleReads > 0 ? ` (${s.staleReads} stale read${s.staleReads === 1 ? '' : 's'})` : '';
  return `${s.vcpus} vCPU(s), ${s.rounds} iteration(s), ${s.stores} stores, ${s.pages} pages, ${s.decisions} decisions${stale}`;
}

function isFailingRecord(x: RunRecord): boolean {
  return x.cls === 'forbidden' || x.cls === 'error';
}

/** The outcome table, the class counts, and the first failing runs. */
export function campaignLines(r: CampaignResult): string[] {
  const pct = (n: number): string => `${((100 * n) / Math.max(1, r.runs)).toFixed(1)}%`;
  const rows = r.table.map((row) => [row.outcome, row.cls, String(row.runs), pct(row.runs), String(row.firstSeed)]);
  const lines = ['', table(['outcome', 'class', 'runs', '%', 'first seed'], rows, ['l', 'l', 'r', 'r', 'r'])];
  lines.push(
    `${r.runs} runs: acceptable ${r.classes.acceptable}, interesting ${r.classes.interesting}, forbidden ${r.classes.forbidden}, error ${r.classes.error}` +
      (r.dfs ? `; dfs explored ${r.dfs.schedules} schedules of "${r.dfs.scenario}"${r.dfs.exhausted ? ' (exhausted)' : ''}` : ''),
  );
  lines.push(...coverageLines(r.coverage));
  const stale = staleReadsOf(r);
  if (stale.reads > 0) lines.push(`weak memory: ${stale.reads} loads read an older store than the newest, in ${stale.runs} of the runs`);
  const failing = r.records.filter(isFailingRecord);
  for (const x of failing.slice(0, FAILURES_PRINTED)) lines.push(...failingRunLines(x));
  const explained = failing.find((x) => x.explanation);
  if (explained?.explanation) lines.push(...explanationLines(explained));
  if (failing.length > FAILURES_PRINTED) lines.push(`... and ${failing.length - FAILURES_PRINTED} more (see --report)`);
  return lines;
}

/** Loads that read an older store than the newest, over a campaign's runs (weak models). */
function staleReadsOf(r: CampaignResult): { reads: number; runs: number } {
  let reads = 0;
  let runs = 0;
  for (const x of r.records) {
    reads += x.staleReads ?? 0;
    if ((x.staleReads ?? 0) > 0) runs++;
  }
  return { reads, runs };
}

function failingRunLines(x: RunRecord): string[] {
  const lines = ['', `${x.cls.toUpperCase()} run ${x.index} (seed ${x.seed}): ${x.outcome} — ${OUTCOMES[x.outcome].what}`];
  if (x.detail) lines.push(`  ${clip(x.detail, DETAIL_CLIP_CHARS)}`);
  lines.push(`  config: ${x.config}`);
  if (x.schedule) lines.push(`  schedule (${x.steps} steps): ${clip(x.schedule)}`);
  if (x.deterministic === false) lines.push('  the same seed gave a DIFFERENT trace on a second run');
  if (x.shrunk) lines.push(`  shrunk to ${sizeLine(x.shrunk.to)}: ${clip(x.shrunk.schedule)}`);
  const file = x.shrunk?.traceFile ?? x.traceFile;
  if (file) lines.push(`  trace file: ${x.traceFile}${x.shrunk?.traceFile ? `, shrunk: ${x.shrunk.traceFile}` : ''}`, `  replay: npx dirtyring stress --replay ${file}`);
  else if (x.mode === 'free') lines.push(`  rerun: npx dirtyring stress --mode free --seed ${x.seed} --runs 1`);
  return lines;
}

/** The per-step invariant's explanation of one failing run, as a diagram. */
function explanationLines(x: RunRecord): string[] {
  const e = x.explanation!;
  const which = x.shrunk ? 'its shrunk schedule' : 'it';
  return ['', `run ${x.index} (seed ${x.seed}): where the invariant broke in ${which} (step ${e.step}, page ${e.page}):`, ...formatExplanation(e).map((l) => `  ${l}`)];
}

/** A mutant campaign's verdict, and how to see the run that caught it again. */
export function mutantVerdictLines(v: MutantVerdict, first: RunRecord | null): string[] {
  const lines: string[] = [
    v.caught
      ? `  ${v.mutant}: caught at run ${v.caughtAtRun}/${v.bound} — ${first?.outcome}: ${first?.detail ?? ''}`
      : v.interrupted
        ? `  ${v.mutant}: interrupted after ${v.runs} runs, not caught yet`
        : `  ${v.mutant}: NOT CAUGHT in ${v.runs} runs`,
  ];
  if (first?.schedule) lines.push(`    schedule (${first.steps} steps): ${clip(first.schedule)}`);
  if (first?.shrunk) lines.push(`    shrunk to ${sizeLine(first.shrunk.to)}: ${clip(first.shrunk.schedule)}`);
  if (v.traceFile) lines.push(`    replay: npx dirtyring stress --replay ${v.traceFile}`);
  return lines;
}

export function mutantTableLines(verdicts: readonly MutantVerdict[], modes: readonly StressMode[]): string[] {
  const names = [...new Set(verdicts.map((v) => v.mutant))];
  const cell = (name: string, mode: StressMode): string => {
    const v = verdicts.find((x) => x.mutant === name && x.mode === mode);
    if (!v) return '-';
    if (v.notApplicable !== undefined) return 'n/a (not modelled)';
    if (v.interrupted) return `interrupted (${v.runs} runs)`;
    return v.caught ? `caught at run ${v.caughtAtRun}/${v.bound}` : `NOT CAUGHT (${v.runs} runs)`;
  };
  const rows = names.map((n) => [n, ...modes.map((m) => cell(n, m))]);
  const score = mutationScore(verdicts, modes);
  rows.push(['mutation score', ...modes.map((m) => `${score[m]?.caught ?? 0}/${score[m]?.total ?? 0}`)]);
  return ['', table(['mutant', ...modes], rows, ['l', ...modes.map(() => 'l' as const)])];
}

/** Mutants caught per mode, not counting those a mode does not model. */
export function mutationScore(verdicts: readonly MutantVerdict[], modes: readonly StressMode[]): Partial<Record<StressMode, MutationScore>> {
  const score: Partial<Record<StressMode, MutationScore>> = {};
  for (const m of modes) {
    const v = verdicts.filter((x) => x.mode === m && x.notApplicable === undefined);
    if (v.length > 0) score[m] = { caught: v.filter((x) => x.caught).length, total: v.length };
  }
  return score;
}

/** Forbidden and error runs of the campaigns that hunt no mutant (a mutant campaign's are expected). */
export function unexpectedFailures(results: readonly CampaignResult[]): { forbidden: number; errors: number } {
  const plain = results.filter((r) => r.mutant === null);
  return { forbidden: plain.reduce((s, r) => s + r.classes.forbidden, 0), errors: plain.reduce((s, r) => s + r.classes.error, 0) };
}

/** The last text line: OK, or what failed and how to reproduce it. */
export function verdictLine(o: StressOptions, report: StressReport): string {
  const { campaigns: results, mutants: verdicts, ok } = report;
  if (report.interrupted !== null) return interruptedLine(o, report);
  if (o.mutants.length === 0) {
    const runs = results.reduce((s, r) => s + r.runs, 0);
    const { forbidden, errors } = unexpectedFailures(results);
    const unreached = o.minCoverage ? unreachedLines(results) : [];
    if (ok) return `OK: ${runs} runs, 0 forbidden, 0 errors${o.minCoverage ? ', every edge state reached' : ''} (seed ${o.seed})`;
    const empty = results.filter((r) => r.runs === 0).length;
    if (empty > 0) return `FAILED: ${empty} campaign(s) made no run — nothing was tested (seed ${o.seed})`;
    if (forbidden === 0 && errors === 0) return `FAILED: --min-coverage: edge states no run reached — ${unreached.join('; ')} (seed ${o.seed})`;
    return `FAILED: ${forbidden} forbidden, ${errors} error run(s) in ${runs} runs — reproduce a run with --seed <its seed> --runs 1, or --replay its trace file`;
  }
  const na = verdicts.filter((v) => v.notApplicable !== undefined).length;
  return ok
    ? `OK: every mutant caught where its code is modelled${na > 0 ? ` (${na} campaign(s) n/a)` : ''} (seed ${o.seed})`
    : `FAILED: ${verdicts.filter((v) => !v.caught && v.notApplicable === undefined).map((v) => `${v.mutant} (${v.mode})`).join(', ')} not caught (seed ${o.seed})`;
}

/** What an interrupted command made, and what of it failed: the tables above are partial. */
function interruptedLine(o: StressOptions, report: StressReport): string {
  const runs = report.campaigns.reduce((s, r) => s + r.runs, 0);
  const { forbidden, errors } = unexpectedFailures(report.campaigns);
  const abandoned = report.campaigns.filter((r) => r.abandonedRun !== null).map((r) => `run ${r.abandonedRun} (${r.mode}) did not end within the grace and is not counted`);
  const caught = o.mutants.length > 0 ? `, ${report.mutants.filter((v) => v.caught).length} of ${o.mutants.length * o.modes.length} mutant campaigns caught` : '';
  return `INTERRUPTED by ${report.interrupted}: partial results, ${runs} runs, ${forbidden} forbidden, ${errors} errors${caught}${abandoned.length > 0 ? `; ${abandoned.join('; ')}` : ''} (seed ${o.seed})`;
}

/** One row per campaign and the totals: a soak's or any multi-campaign command's last table. */
export function totalsLines(results: readonly CampaignResult[], logs: readonly (string | null)[]): string[] {
  const row = (label: string[], rs: readonly CampaignResult[]): string[] => {
    const sum = (f: (r: CampaignResult) => number): string => String(rs.reduce((n, r) => n + f(r), 0));
    const ms = rs.reduce((n, r) => n + r.elapsedMs, 0);
    return [...label, sum((r) => r.runs), sum((r) => r.classes.acceptable), sum((r) => r.classes.interesting), sum((r) => r.classes.forbidden), sum((r) => r.classes.error), `${msAsSeconds(ms, 0)} s`];
  };
  const rows = results.map((r, i) => row([r.mode, logs[i] ?? 'all'], [r]));
  rows.push(row(['total', ''], results));
  return ['', table(['mode', 'log', 'runs', 'acceptable', 'interesting', 'forbidden', 'error', 'elapsed'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'])];
}

/** The --json summary: totals, each campaign without its records, the first failures. */
export function jsonSummary(o: StressOptions, report: StressReport): object {
  const results = report.campaigns;
  const total = (f: (r: CampaignResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  const failures = results
    .flatMap((r) => r.records.filter(isFailingRecord))
    .slice(0, FAILURES_IN_JSON)
    .map((x) => ({ mode: x.mode, mutant: x.mutant, seed: x.seed, outcome: x.outcome, detail: x.detail, schedule: x.schedule, traceFile: x.traceFile, shrunk: x.shrunk }));
  return {
    ok: report.ok,
    seed: o.seed,
    modes: o.modes,
    strategy: o.modes.includes('controlled') ? o.strategy : null,
    harvester: o.harvester,
    runs: total((r) => r.runs),
    acceptable: total((r) => r.classes.acceptable),
    interesting: total((r) => r.classes.interesting),
    forbidden: total((r) => r.classes.forbidden),
    error: total((r) => r.classes.error),
    staleReads: total((r) => staleReadsOf(r).reads),
    campaigns: results.map((r) => ({
      mode: r.mode,
      strategy: r.strategy,
      mutant: r.mutant,
      runs: r.runs,
      classes: r.classes,
      table: r.table,
      caught: r.caught,
      caughtAtRun: r.caughtAtRun,
      dfs: r.dfs,
      coverage: coverageJson(r.coverage),
      elapsedMs: r.elapsedMs,
    })),
    failures,
    mutants: report.mutants,
    mutationScore: report.mutationScore,
    report: o.report,
    junit: o.junit,
    interrupted: report.interrupted,
  };
}
