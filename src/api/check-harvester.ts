/**
 * "My harvester survives N schedules" as one call that throws when it does not (the way loom's
 * and shuttle's `model` do): a stress campaign with your harvester, and an error listing every
 * failing run with its seed, outcome, finding and how to replay it.
 */
import { type StressOptions, type StressResult, stress } from './stress-api.js';

/** Failing runs listed in the error (the result has them all). */
const FAILURES_LISTED = 5;

export class HarvesterCheckFailed extends Error {
  constructor(readonly result: StressResult) {
    super(describeFailures(result));
    this.name = 'HarvesterCheckFailed';
  }
}

/** Runs the campaign; resolves with its result when no run was forbidden or failed, else throws HarvesterCheckFailed. */
export async function checkHarvester(options: StressOptions & { readonly harvester: string | URL }): Promise<StressResult> {
  const r = await stress(options);
  if (!r.ok) throw new HarvesterCheckFailed(r);
  return r;
}

function describeFailures(r: StressResult): string {
  const lines = [
    `${r.classes.forbidden} forbidden and ${r.classes.error} error run(s) in ${r.runs} ${r.mode} runs (seed ${r.seed}${r.strategy ? `, ${r.strategy} strategy` : ''}):`,
    ...r.table.map((row) => `  ${row.outcome} (${row.cls}): ${row.runs} run(s), first seed ${row.firstSeed}`),
  ];
  for (const f of r.failures.slice(0, FAILURES_LISTED)) {
    lines.push(`seed ${f.seed}: ${f.outcome}${f.detail ? ` — ${f.detail}` : ''}`, `  config: ${f.config}`);
    if (f.schedule !== null) lines.push(`  schedule: ${f.schedule}`);
    const file = f.shrunk?.traceFile ?? f.traceFile;
    if (file !== null) lines.push(`  replay: npx dirtyring stress --replay ${file}`);
    else lines.push(`  rerun: stress({ ...options, seed: ${f.seed}, runs: 1 })`);
  }
  return lines.join('\n');
}
