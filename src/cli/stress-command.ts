/** `dirtyring stress`: stress campaigns, mutant campaigns, replays; outcome tables and reports. */
import { join, parse as parsePath } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import { randomSeed, validateLogMode } from '../harness/run-config.js';
import { MUTANT_NAMES } from '../userspace/known-bugs.js';
import { spawnNodeControlledWorker } from '../platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { harvesterLogMode } from '../stress/harvesters/harvester-variants.js';
import type { LogMode } from '../userspace/log-collectors.js';
import {
  type CampaignResult,
  type CampaignSpec,
  type RunRecord,
  STRATEGIES,
  STRESS_MODES,
  type Shard,
  type Strategy,
  StressHarness,
  type StressMode,
  type StressPlatform,
  DEFAULT_CAMPAIGN_RUNS,
  DEFAULT_PCT_DEPTH,
  DEFAULT_PREEMPTION_BOUND,
  expectedRuns,
} from '../stress/campaign.js';
import { type MutantProfile, allMutantProfiles, mutantProfile } from '../stress/mutant-catalog.js';
import { OUTCOMES } from '../stress/outcome.js';
import { type ReplayReport, replayTraceFile } from '../stress/replay.js';
import { type MutantVerdict, type MutationScore, type StressReport, writeJsonReport, writeJunit } from '../stress/report.js';
import { table } from './format.js';
import { Progress } from './progress.js';

export const STRESS_USAGE = `usage: dirtyring stress [options]

Stress the dirty-tracking protocol: many seeded runs, each classified by its outcome —
acceptable (nothing lost), interesting (allowed but notable), forbidden (a lost page, a wrong
reset count, a wedged vCPU, a verification mismatch, a kernel bug) or error (the run failed).

  --mode free             real vCPU worker threads, free-running, with random delays at the
                          protocol's step points, harvest jitter, forced harvests and kicks
                          (default)
  --mode controlled       vCPU workers and userspace park at every step point; a scheduler in
                          the main thread picks who moves next: runs are exactly reproducible
  --strategy S            controlled: random (default) | pct | dfs (bounded exhaustive)
  --pct-depth D           pct: bug depth, d - 1 priority change points (default 3)
  --preemption-bound P    dfs: most preemptions per schedule (default 2)
  --runs N                runs in the campaign (default 1000; with --mutant, each mutant's
                          stated bound)
  --time-budget T         stop each campaign after T (e.g. 90s, 5m); with --runs,
                          whichever comes first
  --mutant NAME[,NAME]|all
                          switch on known protocol bugs, one campaign each, stopping at the
                          first forbidden run; without --mode, in both modes
  --log MODE              only scenarios of one logging interface: ring | bitmap | clear
  --shard i/n             run slice i of n of the campaign (runs whose index is i-1 mod n)
  --seed N                campaign seed: run k uses seed N+k (default: random, printed)
  --report FILE           JSON report: every run's seed, configuration, outcome, trace file
  --junit FILE            JUnit XML report
  --trace-dir DIR         where failing runs' trace files go (default: ./stress-traces, or
                          next to --report)
  --replay FILE           run a trace file again (a controlled schedule exactly, with its
                          trace compared to the recorded one)
  --trace                 with --replay: print the replayed trace step by step
  --no-shrink             do not shrink failing controlled schedules
  --check-determinism     run every controlled run twice and compare the traces (failing
                          runs always are)
  --json                  print one JSON summary as the last line of stdout
  -h, --help              this help

Exit status: 0 no forbidden or error outcome (with --mutant: every mutant caught; with
--replay: the replay was clean), 1 otherwise, 2 bad input.`;


interface Options {
  readonly modes: StressMode[];
  readonly strategy: Strategy;
  readonly pctDepth: number;
  readonly preemptionBound: number;
  readonly runs: number | null;
  readonly timeBudgetMs: number | null;
  readonly mutants: MutantProfile[];
  readonly log: LogMode | null;
  readonly shard: Shard | null;
  readonly seed: number;
  readonly report: string | null;
  readonly junit: string | null;
  readonly traceDir: string;
  readonly replay: string | null;
  readonly printTrace: boolean;
  readonly shrink: boolean;
  readonly checkEveryRun: boolean;
  readonly json: boolean;
  /** The command line, for the report. */
  readonly argv: readonly string[];
}

function positiveInt(param: string, v: string, min = 1, max = 0xffffffff): number {
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(param, v, 'EINVAL', 'expected a non-negative integer');
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(param, v, 'EINVAL', `must be between ${min} and ${max}`);
  return n;
}

/** "90s", "5m", "1h", "500ms", or plain seconds. */
function parseDuration(param: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new ConfigError(param, v, 'EINVAL', 'expected a duration like 60s, 5m or 500ms');
  const scale = m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 1000;
  const ms = Number(m[1]) * scale;
  if (ms <= 0) throw new ConfigError(param, v, 'EINVAL', 'must be longer than 0');
  return ms;
}

function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  if (!m) throw new ConfigError('--shard', v, 'EINVAL', 'expected i/n, e.g. 1/4');
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new ConfigError('--shard', v, 'EINVAL', 'need 1 <= i <= n');
  return { index, count };
}

/** Options that shape a campaign; a replay takes everything from its trace file instead. */
const CAMPAIGN_ONLY = [
  'runs',
  'time-budget',
  'mode',
  'strategy',
  'pct-depth',
  'preemption-bound',
  'mutant',
  'log',
  'shard',
  'seed',
  'report',
  'junit',
  'trace-dir',
  'no-shrink',
  'check-determinism',
] as const;

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      'time-budget': { type: 'string' },
      mode: { type: 'string' },
      strategy: { type: 'string' },
      'pct-depth': { type: 'string' },
      'preemption-bound': { type: 'string' },
      mutant: { type: 'string' },
      log: { type: 'string' },
      shard: { type: 'string' },
      seed: { type: 'string' },
      report: { type: 'string' },
      junit: { type: 'string' },
      'trace-dir': { type: 'string' },
      replay: { type: 'string' },
      trace: { type: 'boolean', default: false },
      'no-shrink': { type: 'boolean', default: false },
      'check-determinism': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  // A replay reruns what its trace file recorded, so the campaign options have nothing to act
  // on; rather than ignore one a user meant (a --seed, a --report), refuse it.
  if (values.replay !== undefined) {
    for (const name of CAMPAIGN_ONLY) {
      const v = values[name];
      if (v !== undefined && v !== false) throw new ConfigError(`--${name}`, v === true ? 'on' : v, 'EINVAL', 'not used with --replay');
    }
  } else if (values.trace === true) {
    throw new ConfigError('--trace', 'on', 'EINVAL', '--trace needs --replay');
  }
  const mode = values.mode;
  if (mode !== undefined && !(STRESS_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError('--mode', mode, 'EINVAL', `mode must be one of ${STRESS_MODES.join(', ')}`);
  }
  const strategy = values.strategy ?? 'random';
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ConfigError('--strategy', strategy, 'EINVAL', `strategy must be one of ${STRATEGIES.join(', ')}`);
  }
  if (values.strategy !== undefined && mode === 'free') {
    throw new ConfigError('--strategy', strategy, 'EINVAL', 'scheduling strategies need --mode controlled');
  }
  const log = values.log !== undefined ? validateLogMode(values.log) : null;
  const mutants: MutantProfile[] = [];
  if (values.mutant !== undefined) {
    const names = values.mutant.split(',').map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw new ConfigError('--mutant', values.mutant, 'EINVAL', 'expected a mutant name or all');
    for (const name of names) {
      if (name === 'all') {
        for (const p of allMutantProfiles()) if (!mutants.some((m) => m.name === p.name)) mutants.push(p);
        continue;
      }
      const p = mutantProfile(name);
      if (!p) {
        throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')}, all)`);
      }
      if (!mutants.some((m) => m.name === p.name)) mutants.push(p);
    }
    for (const p of mutants) {
      const need = p.controlled.log ?? (p.controlled.harvester ? harvesterLogMode(p.controlled.harvester) : null);
      if (log !== null && need !== null && need !== log) {
        throw new ConfigError('--log', log, 'EINVAL', `mutant ${p.name} is only exposed with --log ${need}`);
      }
    }
  }
  const shard = values.shard !== undefined ? parseShard(values.shard) : null;
  if (shard && strategy === 'dfs') throw new ConfigError('--shard', values.shard, 'EINVAL', 'dfs explores one schedule tree; shard random or pct campaigns');
  const modes: StressMode[] = mode !== undefined ? [mode as StressMode] : mutants.length > 0 ? ['free', 'controlled'] : ['free'];
  if (values.strategy !== undefined && mode === undefined && mutants.length === 0) modes.splice(0, 1, 'controlled');
  if (values['check-determinism'] === true && modes.length === 1 && modes[0] === 'free') {
    throw new ConfigError('--check-determinism', 'on', 'EINVAL', 'free-running runs are not exactly repeatable; it needs --mode controlled');
  }
  const report = values.report ?? null;
  const traceDir = values['trace-dir'] ?? (report !== null ? join(parsePath(report).dir, `${parsePath(report).name}-traces`) : 'stress-traces');
  return {
    modes,
    strategy: strategy as Strategy,
    pctDepth: values['pct-depth'] !== undefined ? positiveInt('--pct-depth', values['pct-depth'], 1, 100) : DEFAULT_PCT_DEPTH,
    preemptionBound: values['preemption-bound'] !== undefined ? positiveInt('--preemption-bound', values['preemption-bound'], 0, 100) : DEFAULT_PREEMPTION_BOUND,
    runs: values.runs !== undefined ? positiveInt('--runs', values.runs, 1, 1e9) : null,
    timeBudgetMs: values['time-budget'] !== undefined ? parseDuration('--time-budget', values['time-budget']) : null,
    mutants,
    log,
    shard,
    seed: values.seed !== undefined ? positiveInt('--seed', values.seed, 0) : randomSeed(),
    report,
    junit: values.junit ?? null,
    traceDir,
    replay: values.replay ?? null,
    printTrace: values.trace === true,
    shrink: values['no-shrink'] !== true,
    checkEveryRun: values['check-determinism'] === true,
    json: values.json === true,
    argv,
  };
}

const nodePlatform: StressPlatform = { spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker };

export async function stressCommand(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  if (o === 'help') {
    console.log(STRESS_USAGE);
    return 0;
  }
  // Human output goes to stderr with --json, so that stdout holds only the JSON line.
  const out = o.json ? (s: string) => process.stderr.write(`${s}\n`) : (s: string) => process.stdout.write(`${s}\n`);
  const harness = new StressHarness(nodePlatform);
  try {
    if (o.replay !== null) return await replay(o, harness, out);
    return await campaigns(o, harness, out);
  } finally {
    await harness.close();
  }
}

async function replay(o: Options, harness: StressHarness, out: (s: string) => void): Promise<number> {
  const r: ReplayReport = await replayTraceFile(o.replay!, harness);
  out(`dirtyring stress --replay ${r.file}: ${r.mode} run, seed ${r.seed}${r.mutants.length ? `, mutants ${r.mutants.join(', ')}` : ''}`);
  out(`  config: ${r.config}`);
  if (o.printTrace && r.trace) for (const line of r.trace) out(line);
  out(`  outcome: ${r.outcome} (${r.cls}); recorded: ${r.recordedOutcome}${r.detail ? ` — ${r.detail}` : ''}`);
  if (r.mode === 'controlled') {
    out(
      r.identical
        ? `  trace: identical to the recording (${r.steps} steps, hash ${r.traceHash})${r.deterministic ? '; a second replay matched too' : '; a SECOND REPLAY DIFFERED'}`
        : `  trace: DIFFERS from the recording (hash ${r.traceHash}, recorded ${r.recordedHash})`,
    );
  } else {
    out('  (a free-running file reruns the same seed and configuration; the interleaving is the machine\'s)');
  }
  const clean = r.cls === 'acceptable' || r.cls === 'interesting';
  const ok = clean && r.identical !== false && r.deterministic !== false;
  if (o.json) process.stdout.write(`${JSON.stringify({ ok, replay: true, ...r, trace: undefined })}\n`);
  return ok ? 0 : 1;
}

async function campaigns(o: Options, harness: StressHarness, out: (s: string) => void): Promise<number> {
  const startedAt = new Date().toISOString();
  const results: CampaignResult[] = [];
  const verdicts: MutantVerdict[] = [];
  const baseSpec = (mode: StressMode): Omit<CampaignSpec, 'mutant' | 'runs' | 'stopAtFirstForbidden'> => ({
    mode,
    strategy: o.strategy,
    pctDepth: o.pctDepth,
    preemptionBound: o.preemptionBound,
    timeBudgetMs: o.timeBudgetMs,
    seed: o.seed,
    shard: o.shard,
    log: o.log,
    shrink: o.shrink,
    checkEveryRun: o.checkEveryRun,
    traceDir: o.traceDir,
  });
  const run = async (spec: CampaignSpec, label: string): Promise<CampaignResult> => {
    const progress = new Progress(process.stderr, label, expectedRuns(spec));
    const counts = { forbidden: 0, error: 0, interesting: 0 };
    const result = await harness.runCampaign(spec, (rec: RunRecord, done) => {
      if (rec.cls === 'forbidden') counts.forbidden++;
      else if (rec.cls === 'error') counts.error++;
      else if (rec.cls === 'interesting') counts.interesting++;
      progress.update(done, counts);
    });
    progress.finish();
    return result;
  };

  if (o.mutants.length === 0) {
    for (const mode of o.modes) {
      const spec: CampaignSpec = { ...baseSpec(mode), mutant: null, runs: o.runs ?? (o.timeBudgetMs !== null ? null : DEFAULT_CAMPAIGN_RUNS), stopAtFirstForbidden: false };
      out(`dirtyring stress: ${describeCampaign(spec)}`);
      const r = await run(spec, mode === 'free' ? 'free' : `controlled/${o.strategy}`);
      results.push(r);
      for (const line of campaignLines(r)) out(line);
    }
  } else {
    for (const mode of o.modes) {
      out(`dirtyring stress: ${o.mutants.length} mutant campaign(s), ${mode} mode${mode === 'controlled' ? `, ${o.strategy} strategy` : ''}, seed ${o.seed}`);
      for (const m of o.mutants) {
        const notModelled = m.notModelledIn?.[mode];
        if (notModelled !== undefined) {
          verdicts.push({ mutant: m.name, mode, caught: false, caughtAtRun: null, bound: 0, runs: 0, outcome: null, traceFile: null, notApplicable: notModelled });
          out(`  ${m.name}: n/a in ${mode} mode — ${notModelled}`);
          continue;
        }
        const bound = o.runs ?? m.bound[mode];
        const spec: CampaignSpec = { ...baseSpec(mode), mutant: m, runs: bound, stopAtFirstForbidden: true };
        const r = await run(spec, `${mode} ${m.name}`);
        results.push(r);
        const first = r.records.find((x) => x.cls === 'forbidden') ?? null;
        verdicts.push({
          mutant: m.name,
          mode,
          caught: r.caught,
          caughtAtRun: r.caughtAtRun,
          bound,
          runs: r.runs,
          outcome: first?.outcome ?? null,
          traceFile: first?.shrunk?.traceFile ?? first?.traceFile ?? null,
        });
        out(
          r.caught
            ? `  ${m.name}: caught at run ${r.caughtAtRun}/${bound} — ${first?.outcome}: ${first?.detail ?? ''}`
            : `  ${m.name}: NOT CAUGHT in ${r.runs} runs`,
        );
        if (first?.schedule) out(`    schedule (${first.steps} steps): ${clip(first.schedule)}`);
        if (first?.shrunk) out(`    shrunk to ${sizeLine(first.shrunk.to)}: ${clip(first.shrunk.schedule)}`);
        const file = first?.shrunk?.traceFile ?? first?.traceFile;
        if (file) out(`    replay: npx dirtyring stress --replay ${file}`);
      }
    }
    for (const line of mutantTableLines(verdicts, o.modes)) out(line);
  }

  const score = mutationScore(verdicts, o.modes);
  const forbidden = results.filter((r) => r.mutant === null).reduce((s, r) => s + r.classes.forbidden, 0);
  const errors = results.filter((r) => r.mutant === null).reduce((s, r) => s + r.classes.error, 0);
  const ok = o.mutants.length > 0 ? verdicts.every((v) => v.caught || v.notApplicable !== undefined) : forbidden === 0 && errors === 0;
  const report: StressReport = {
    format: 'dirtyring-stress-report/1',
    startedAt,
    command: ['stress', ...o.argv],
    ok,
    campaigns: results,
    mutants: verdicts,
    mutationScore: score,
  };
  if (o.report !== null) {
    writeJsonReport(o.report, report);
    out(`report: ${o.report}`);
  }
  if (o.junit !== null) {
    writeJunit(o.junit, report);
    out(`junit: ${o.junit}`);
  }
  if (o.mutants.length === 0) {
    const runs = results.reduce((s, r) => s + r.runs, 0);
    out(
      ok
        ? `OK: ${runs} runs, 0 forbidden, 0 errors (seed ${o.seed})`
        : `FAILED: ${forbidden} forbidden, ${errors} error run(s) in ${runs} runs — reproduce a run with --seed <its seed> --runs 1, or --replay its trace file`,
    );
  } else {
    const na = verdicts.filter((v) => v.notApplicable !== undefined).length;
    out(
      ok
        ? `OK: every mutant caught where its code is modelled${na > 0 ? ` (${na} campaign(s) n/a)` : ''} (seed ${o.seed})`
        : `FAILED: ${verdicts.filter((v) => !v.caught && v.notApplicable === undefined).map((v) => `${v.mutant} (${v.mode})`).join(', ')} not caught (seed ${o.seed})`,
    );
  }
  if (o.json) {
    const failures = results
      .flatMap((r) => r.records.filter((x) => x.cls === 'forbidden' || x.cls === 'error'))
      .slice(0, 20)
      .map((x) => ({ mode: x.mode, mutant: x.mutant, seed: x.seed, outcome: x.outcome, detail: x.detail, schedule: x.schedule, traceFile: x.traceFile, shrunk: x.shrunk }));
    const summary = {
      ok,
      seed: o.seed,
      modes: o.modes,
      strategy: o.modes.includes('controlled') ? o.strategy : null,
      runs: results.reduce((s, r) => s + r.runs, 0),
      acceptable: results.reduce((s, r) => s + r.classes.acceptable, 0),
      interesting: results.reduce((s, r) => s + r.classes.interesting, 0),
      forbidden: results.reduce((s, r) => s + r.classes.forbidden, 0),
      error: results.reduce((s, r) => s + r.classes.error, 0),
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
        elapsedMs: r.elapsedMs,
      })),
      failures,
      mutants: verdicts,
      mutationScore: score,
      report: o.report,
      junit: o.junit,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  }
  return ok ? 0 : 1;
}

function describeCampaign(spec: CampaignSpec): string {
  const what = spec.mode === 'free' ? 'free-running real threads' : `controlled, ${spec.strategy} strategy${spec.strategy === 'pct' ? ` (depth ${spec.pctDepth})` : spec.strategy === 'dfs' ? ` (preemption bound ${spec.preemptionBound})` : ''}`;
  const size = spec.runs !== null ? `${spec.runs} runs` : 'runs';
  const budget = spec.timeBudgetMs !== null ? ` within ${(spec.timeBudgetMs / 1000).toFixed(0)}s` : '';
  return `${what}, ${size}${budget}${spec.shard ? `, shard ${spec.shard.index}/${spec.shard.count}` : ''}${spec.log ? `, --log ${spec.log}` : ''}, seed ${spec.seed}`;
}

function clip(s: string, max = 160): string {
  return s.length > max ? `${s.slice(0, max)} …` : s;
}

function sizeLine(s: { vcpus: number; stores: number; pages: number; rounds: number; decisions: number }): string {
  return `${s.vcpus} vCPU(s), ${s.rounds} iteration(s), ${s.stores} stores, ${s.pages} pages, ${s.decisions} decisions`;
}

function campaignLines(r: CampaignResult): string[] {
  const pct = (n: number): string => `${((100 * n) / Math.max(1, r.runs)).toFixed(1)}%`;
  const rows = r.table.map((row) => [row.outcome, row.cls, String(row.runs), pct(row.runs), String(row.firstSeed)]);
  const lines = ['', table(['outcome', 'class', 'runs', '%', 'first seed'], rows, ['l', 'l', 'r', 'r', 'r'])];
  lines.push(
    `${r.runs} runs: acceptable ${r.classes.acceptable}, interesting ${r.classes.interesting}, forbidden ${r.classes.forbidden}, error ${r.classes.error}` +
      (r.dfs ? `; dfs explored ${r.dfs.schedules} schedules of "${r.dfs.scenario}"${r.dfs.exhausted ? ' (exhausted)' : ''}` : ''),
  );
  const failing = r.records.filter((x) => x.cls === 'forbidden' || x.cls === 'error');
  for (const x of failing.slice(0, 10)) {
    lines.push('', `${x.cls.toUpperCase()} run ${x.index} (seed ${x.seed}): ${x.outcome} — ${OUTCOMES[x.outcome].what}`);
    if (x.detail) lines.push(`  ${clip(x.detail, 300)}`);
    lines.push(`  config: ${x.config}`);
    if (x.schedule) lines.push(`  schedule (${x.steps} steps): ${clip(x.schedule)}`);
    if (x.deterministic === false) lines.push('  the same seed gave a DIFFERENT trace on a second run');
    if (x.shrunk) lines.push(`  shrunk to ${sizeLine(x.shrunk.to)}: ${clip(x.shrunk.schedule)}`);
    const file = x.shrunk?.traceFile ?? x.traceFile;
    if (file) lines.push(`  trace file: ${x.traceFile}${x.shrunk?.traceFile ? `, shrunk: ${x.shrunk.traceFile}` : ''}`, `  replay: npx dirtyring stress --replay ${file}`);
    else if (x.mode === 'free') lines.push(`  rerun: npx dirtyring stress --mode free --seed ${x.seed} --runs 1`);
  }
  if (failing.length > 10) lines.push(`... and ${failing.length - 10} more (see --report)`);
  return lines;
}

function mutantTableLines(verdicts: readonly MutantVerdict[], modes: readonly StressMode[]): string[] {
  const names = [...new Set(verdicts.map((v) => v.mutant))];
  const cell = (name: string, mode: StressMode): string => {
    const v = verdicts.find((x) => x.mutant === name && x.mode === mode);
    if (!v) return '-';
    if (v.notApplicable !== undefined) return 'n/a (not modelled)';
    return v.caught ? `caught at run ${v.caughtAtRun}/${v.bound}` : `NOT CAUGHT (${v.runs} runs)`;
  };
  const rows = names.map((n) => [n, ...modes.map((m) => cell(n, m))]);
  const score = mutationScore(verdicts, modes);
  rows.push(['mutation score', ...modes.map((m) => `${score[m]?.caught ?? 0}/${score[m]?.total ?? 0}`)]);
  return ['', table(['mutant', ...modes], rows, ['l', ...modes.map(() => 'l' as const)])];
}

function mutationScore(verdicts: readonly MutantVerdict[], modes: readonly StressMode[]): Partial<Record<StressMode, MutationScore>> {
  const score: Partial<Record<StressMode, MutationScore>> = {};
  for (const m of modes) {
    const v = verdicts.filter((x) => x.mode === m && x.notApplicable === undefined);
    if (v.length > 0) score[m] = { caught: v.filter((x) => x.caught).length, total: v.length };
  }
  return score;
}
