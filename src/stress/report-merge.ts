/**
 * Shard reports into one: the campaigns of n `stress --shard i/n` reports (JSON), their records
 * put back in campaign order and counted again, give the outcome table, class counts and
 * coverage of the campaign run unsharded. A mutant campaign stops at its first catch: the
 * merged one keeps the runs up to the first forbidden run of any shard, which is where the
 * unsharded campaign would have stopped (every shard ran all its runs before its own catch).
 */
import type { Shard } from './campaign-spec.js';
import { type CampaignResult, CampaignTally } from './campaign-tally.js';
import type { MutantVerdict, StressReport } from './report.js';
import type { RunRecord } from './run-record.js';
import type { StressMode } from './stress-mode.js';

export const STRESS_REPORT_FORMAT = 'dirtyring-stress-report/1';

export interface MergedReport {
  readonly report: StressReport;
  /** Why the merge is not the whole campaign (missing or repeated shards, different campaigns). */
  readonly problems: string[];
}

/** A campaign's key across shards: the same mode, strategy, mutant and seed. */
function campaignKey(c: CampaignResult): string {
  return `${c.mode}/${c.strategy ?? '-'}/${c.mutant ?? '-'}/${c.seed}`;
}

function describeKey(c: CampaignResult): string {
  return `${c.mode}${c.strategy ? ` ${c.strategy}` : ''}${c.mutant ? ` ${c.mutant}` : ''} seed ${c.seed}`;
}

/** The shards of one campaign must be 1..n of the same n, each once. */
function shardProblems(parts: readonly CampaignResult[]): string[] {
  const what = describeKey(parts[0]!);
  const shards = parts.map((p) => p.shard);
  if (shards.some((s) => s === null)) return parts.length > 1 ? [`${what}: an unsharded report and ${parts.length - 1} other(s) of the same campaign`] : [];
  const counts = new Set(shards.map((s) => s!.count));
  if (counts.size > 1) return [`${what}: shards of different counts (${[...counts].join(', ')})`];
  const n = shards[0]!.count;
  const seen = new Map<number, number>();
  for (const s of shards as Shard[]) seen.set(s.index, (seen.get(s.index) ?? 0) + 1);
  const problems: string[] = [];
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !seen.has(i));
  if (missing.length > 0) problems.push(`${what}: shard(s) ${missing.map((i) => `${i}/${n}`).join(', ')} missing`);
  const twice = [...seen].filter(([, k]) => k > 1).map(([i]) => `${i}/${n}`);
  if (twice.length > 0) problems.push(`${what}: shard(s) ${twice.join(', ')} given more than once`);
  return problems;
}

function mergeCampaign(parts: readonly CampaignResult[]): CampaignResult {
  const first = parts[0]!;
  let records: RunRecord[] = parts.flatMap((p) => p.records).sort((a, b) => a.index - b.index);
  if (first.mutant !== null) {
    const caught = records.find((r) => r.cls === 'forbidden');
    if (caught !== undefined) records = records.filter((r) => r.index <= caught.index);
  }
  const tally = new CampaignTally({ mode: first.mode, strategy: first.strategy, mutant: first.mutant, seed: first.seed, shard: null });
  for (const r of records) tally.add(r);
  tally.interrupted = parts.some((p) => p.interrupted === true);
  // Shards run side by side: the campaign took as long as its slowest shard.
  return tally.result(null, Math.max(...parts.map((p) => p.elapsedMs)));
}

function mergeVerdicts(reports: readonly StressReport[], campaigns: readonly CampaignResult[]): MutantVerdict[] {
  const out: MutantVerdict[] = [];
  for (const v of reports.flatMap((r) => r.mutants)) {
    if (out.some((o) => o.mutant === v.mutant && o.mode === v.mode)) continue;
    const c = campaigns.find((x) => x.mutant === v.mutant && x.mode === v.mode);
    if (v.notApplicable !== undefined || c === undefined) {
      out.push(v);
      continue;
    }
    const first = c.records.find((x) => x.cls === 'forbidden') ?? null;
    out.push({
      mutant: v.mutant,
      mode: v.mode,
      caught: c.caught,
      caughtAtRun: c.caughtAtRun,
      bound: v.bound,
      runs: c.runs,
      outcome: first?.outcome ?? null,
      traceFile: first?.shrunk?.traceFile ?? first?.traceFile ?? null,
    });
  }
  return out;
}

/** Whether the merged campaign passes: plain campaigns without a failing run, every mutant caught where modelled. */
function mergedOk(campaigns: readonly CampaignResult[], verdicts: readonly MutantVerdict[]): boolean {
  const plain = campaigns.filter((c) => c.mutant === null);
  const plainOk = plain.every((c) => c.runs > 0 && c.classes.forbidden === 0 && c.classes.error === 0);
  return plainOk && verdicts.every((v) => v.caught || v.notApplicable !== undefined);
}

export function mergeReports(reports: readonly StressReport[], command: string[]): MergedReport {
  const groups = new Map<string, CampaignResult[]>();
  for (const r of reports) for (const c of r.campaigns) groups.set(campaignKey(c), [...(groups.get(campaignKey(c)) ?? []), c]);
  const problems = [...groups.values()].flatMap(shardProblems);
  const campaigns = [...groups.values()].map(mergeCampaign);
  const verdicts = mergeVerdicts(reports, campaigns);
  const modes = [...new Set(verdicts.map((v) => v.mode))] as StressMode[];
  const interrupted = reports.find((r) => r.interrupted)?.interrupted ?? null;
  if (interrupted !== null) problems.push(`a shard was interrupted (${interrupted}): its runs are partial`);
  const score: StressReport['mutationScore'] = {};
  for (const m of modes) {
    const v = verdicts.filter((x) => x.mode === m && x.notApplicable === undefined);
    if (v.length > 0) score[m] = { caught: v.filter((x) => x.caught).length, total: v.length };
  }
  const report: StressReport = {
    format: STRESS_REPORT_FORMAT,
    startedAt: reports.map((r) => r.startedAt).sort()[0] ?? new Date().toISOString(),
    command,
    ok: mergedOk(campaigns, verdicts) && problems.length === 0,
    campaigns,
    mutants: verdicts,
    mutationScore: score,
    interrupted,
  };
  return { report, problems };
}
