/**
 * What `dirtyring stress` prints about coverage: per campaign, the table of edge states with the
 * runs that reached each (and the states the mode cannot reach, marked n/a with the reason),
 * the count reached, and the states no run reached; and the JSON summary's coverage fields.
 */
import type { CampaignCoverage } from '../stress/coverage/campaign-coverage.js';
import { table } from './format.js';

const PERCENT = 100;

export function coverageLines(c: CampaignCoverage): string[] {
  const pct = (n: number): string => `${((PERCENT * n) / Math.max(1, c.runs)).toFixed(1)}%`;
  const rows = c.rows.map((r) =>
    r.applicable
      ? [r.structure, r.id, String(r.runs), pct(r.runs), String(r.hits), r.firstRun === null ? 'UNREACHED' : String(r.firstRun)]
      : [r.structure, r.id, '-', '-', '-', 'n/a'],
  );
  const lines = [
    '',
    `coverage (${c.mode}): ${c.reached}/${c.applicable} edge states reached in ${c.runs} runs`,
    table(['structure', 'edge state', 'runs', '%', 'hits', 'first run'], rows, ['l', 'l', 'r', 'r', 'r', 'r']),
  ];
  const reasons = new Map<string, string[]>();
  for (const r of c.rows) if (!r.applicable) reasons.set(r.reason!, [...(reasons.get(r.reason!) ?? []), r.id]);
  for (const [reason, ids] of reasons) lines.push(`n/a in ${c.mode} mode: ${ids.join(', ')} — ${reason}`);
  if (c.unreached.length > 0) lines.push(`UNREACHED (${c.unreached.length}): ${c.unreached.join(', ')}`);
  return lines;
}

/** The JSON summary's coverage of a campaign: counts, the unreached states, runs per state ('n/a' where it cannot apply). */
export function coverageJson(c: CampaignCoverage): object {
  return {
    reached: c.reached,
    applicable: c.applicable,
    unreached: c.unreached,
    runsPerState: Object.fromEntries(c.rows.map((r) => [r.id, r.applicable ? r.runs : 'n/a'])),
  };
}

/** The campaigns' states no run reached, as `mode: id, id` lines (what --min-coverage fails on). */
export function unreachedLines(results: readonly { readonly coverage: CampaignCoverage; readonly mutant: string | null }[]): string[] {
  return results.filter((r) => r.mutant === null && r.coverage.unreached.length > 0).map((r) => `${r.coverage.mode}: ${r.coverage.unreached.join(', ')}`);
}
