/** `dirtyring stress`: stress campaigns, mutant campaigns, replays; outcome tables and reports. */
import { spawnNodeControlledWorker } from '../platform/node-controlled-host.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { spawnNodeHarvesterThread } from '../platform/node-harvester-host.js';
import { type CampaignResult, StressHarness, type StressPlatform } from '../stress/campaign.js';
import { type CampaignSpec, DEFAULT_CAMPAIGN_RUNS, type UserHarvesterRef, expectedRuns } from '../stress/campaign-spec.js';
import { ConfigError } from '../base/config-error.js';
import { loadCliHarvester } from './harvester-option.js';
import type { MutantProfile } from '../stress/mutant-catalog.js';
import { replayTraceFile } from '../stress/replay.js';
import { type MutantVerdict, type StressReport, writeJsonReport, writeJunit } from '../stress/report.js';
import type { StressMode } from '../stress/stress-mode.js';
import { unreachedLines } from './coverage-output.js';
import { humanOutput } from './format.js';
import { type MatrixCell, cellOutcome, runMemoryMatrix } from '../stress/memory-matrix.js';
import { expectLoss, matrixLines } from './matrix-output.js';
import { formatExplanation } from '../stress/controlled/explain.js';
import { Progress, type ProgressCounts } from './progress.js';
import { type StressOptions, parseStressOptions } from './stress-options.js';
import { type Interrupt, type StopSignal, withInterrupt } from './interrupt.js';
import { describePlan } from './stress-preset.js';
import { finishWithin } from '../stress/stop.js';
import {
  campaignLines,
  describeCampaign,
  jsonSummary,
  mutantTableLines,
  mutantVerdictLines,
  mutationScore,
  totalsLines,
  unexpectedFailures,
  verdictLine,
} from './stress-output.js';

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
  --harvester FILE        stress your own harvester (docs/HARVESTER-API.md) in the
                          collector's place, free and controlled; its log mode is the runs'
  --harvester-threads N   run it on N threads of its own (1..8), or 0 on the harness's
                          thread (default: as its module says)
  --log MODE              only scenarios of one logging interface: ring | bitmap | clear
  --shard i/n|auto        run slice i of n of the campaign (runs whose index is i-1 mod n);
                          auto: from the environment of a Kubernetes Indexed Job
                          (JOB_COMPLETION_INDEX, DIRTYRING_SHARD_COUNT), GitLab CI
                          (CI_NODE_INDEX/TOTAL), CircleCI, Buildkite, or DIRTYRING_SHARD=i/n;
                          merge the shards' reports with \`dirtyring report merge\`
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
  --coverage-guided       controlled: steer new scenarios toward the edge states no run has
                          reached yet (replay a guided run from its trace file)
  --min-coverage          fail (exit 1) unless every campaign reached every edge state its
                          mode can reach; the unreached ones are listed
  --memory-model M        controlled: sc (default: every access sequentially consistent) |
                          x86 (TSO) | arm64: the ring entries, ring indices, SPTEs and bitmap
                          words follow that memory model, and which store each load reads is
                          a scheduler decision (docs/WEAK-MEMORY.md); with --replay, it must be
                          the model the file was recorded under
  --wmm-history K         weak models: stores kept per location (default 8, 2..64)
  --stale-rate Q          weak models, random: share of loads that read an older store than
                          the newest when they can (default 0.25)
  --stale-depth D         weak models, pct: loads per run that read an older store (default 1)
  --stale-bound B         weak models, dfs: most loads per schedule that read an older store
                          (default 1)
  --matrix                run every memory model × ring capability × harvester (acquire/
                          release, or a pre-2022 plain RESET store or flags load), with a reset
                          thread, up to --runs runs each (default 500); prints the table
  --ring-cap C            controlled ring scenarios: ring (KVM_CAP_DIRTY_LOG_RING, the pre-2022
                          orderings) | ring-acqrel (..._ACQ_REL); default drawn (arm64: acqrel)
  --resetter R            controlled ring scenarios: inline (the harvester resets) | thread (a
                          second userspace thread calls KVM_RESET_DIRTY_RINGS while the harvester
                          keeps harvesting); default drawn
  --self-reap on|off      free ring runs of the standard harvester: the vCPU thread reaps its
                          own ring on exit 31 (on) or stalls until userspace collects (off);
                          default drawn per run (controlled runs model the hand-off only)
  --memory SIZE[,SIZE]    free runs: guest memory drawn from these sizes (e.g. 1GiB, or
                          64MiB,1GiB), in whole MiB; default small guests of 1-8 MiB. A slot
                          of 1 GiB or more gets the SIMD bitmap scan
  --preset soak           a soak: 3000 controlled and 400 free runs in each of ring, bitmap
                          and clear (10 200 runs), then the totals (\`npm run soak\`); with
                          --runs N, N runs in each of the six campaigns instead
  --json                  print one JSON summary as the last line of stdout
  -h, --help              this help

Every campaign prints which edge states of the structures its runs reached (ring entries 0
and size - 1, laps, soft-full, reset coalescing, bitmap word halves and slot ends, CLEAR
chunks, several memslots, the SMM address space, the TLB): a table, and "coverage" in --json
and --report.

Exit status: 0 no forbidden or error outcome (with --mutant: every mutant caught; with
--replay: the replay was clean; with --min-coverage: every edge state reached), 1
otherwise, 2 bad input.`;

const nodePlatform: StressPlatform = { spawnVcpu: spawnNodeVcpuWorker, spawnControlled: spawnNodeControlledWorker, spawnHarvester: spawnNodeHarvesterThread };

type Out = (s: string) => void;

export async function stressCommand(argv: string[]): Promise<number> {
  const o = parseStressOptions(argv);
  if (o === 'help') {
    console.log(STRESS_USAGE);
    return 0;
  }
  const out = humanOutput(o.json);
  // Loaded before any worker starts: a bad module is bad input (exit 2), not a failed campaign.
  const user = await loadCliHarvester(o.harvester ?? undefined, o.log ?? undefined, o.harvesterThreads);
  if (user !== null && o.mutants.length > 0) throw new ConfigError('--harvester', o.harvester!, 'EINVAL', 'mutant campaigns judge the built-in collectors');
  if (user !== null && o.resetter === 'thread') throw new ConfigError('--resetter', 'thread', 'EINVAL', 'the reset thread serves the built-in collector');
  const ref: UserHarvesterRef | null = user === null ? null : { url: user.url, name: user.definition.name, log: user.definition.log, threads: user.threads ?? user.definition.threads ?? null };
  const harness = new StressHarness(nodePlatform);
  let interrupted = false;
  try {
    if (o.replay !== null) return await replay(o, o.replay, harness, out);
    return await withInterrupt('run', async (interrupt) => {
      const status = o.matrix ? await matrix(o, harness, out, interrupt) : await campaigns(o, harness, out, interrupt, ref);
      interrupted = interrupt.requested;
      return status;
    });
  } finally {
    // An abandoned run may still hold its workers: closing is bounded once interrupted.
    await (interrupted ? finishWithin(harness.close(), AbortSignal.abort(), CLOSE_GRACE_MS) : harness.close());
  }
}

/** After an interruption, how long closing the worker pools may take before the command exits anyway. */
const CLOSE_GRACE_MS = 5_000;

async function replay(o: StressOptions, file: string, harness: StressHarness, out: Out): Promise<number> {
  const r = await replayTraceFile(file, harness, o.memoryModel ?? undefined);
  const model = r.memoryModel !== null && r.memoryModel !== 'sc' ? `, memory model ${r.memoryModel}` : '';
  out(`dirtyring stress --replay ${r.file}: ${r.mode} run, seed ${r.seed}${r.mutants.length ? `, mutants ${r.mutants.join(', ')}` : ''}${model}`);
  out(`  config: ${r.config}`);
  if (o.printTrace && r.trace) for (const line of r.trace) out(line);
  out(`  outcome: ${r.outcome} (${r.cls}); recorded: ${r.recordedOutcome}${r.detail ? ` — ${r.detail}` : ''}`);
  if (r.explanation) {
    out('');
    out(`  where the invariant broke (step ${r.explanation.step}, page ${r.explanation.page}):`);
    for (const line of formatExplanation(r.explanation)) out(`  ${line}`);
    out('');
  }
  if (r.mode === 'controlled') {
    out(
      r.identical
        ? `  trace: identical to the recording (${r.steps} steps, hash ${r.traceHash})${r.deterministic ? '; a second replay matched too' : '; a SECOND REPLAY DIFFERED'}`
        : `  trace: DIFFERS from the recording (hash ${r.traceHash}, recorded ${r.recordedHash})${r.traceDifference ? `: ${r.traceDifference}` : ''}`,
    );
  } else {
    out("  (a free-running file reruns the same seed and configuration; the interleaving is the machine's)");
  }
  const clean = r.cls === 'acceptable' || r.cls === 'interesting';
  const ok = clean && r.identical !== false && r.deterministic !== false;
  if (o.json) process.stdout.write(`${JSON.stringify({ ok, replay: true, ...r, trace: undefined })}\n`);
  return ok ? 0 : 1;
}

/** Runs per cell of --matrix when --runs is not given: well past the worst catch measured. */
const MATRIX_RUNS = 500;

async function matrix(o: StressOptions, harness: StressHarness, out: Out, interrupt: Interrupt): Promise<number> {
  const runs = o.runs ?? MATRIX_RUNS;
  out(`dirtyring stress --matrix: memory model × ring capability × harvester, a reset thread, up to ${runs} controlled runs per cell, seed ${o.seed}`);
  const onCell = (c: MatrixCell): void => void process.stderr.write(`  ${c.model} ${c.ringCap} ${c.harvester}: ${cellOutcome(c)}\n`);
  const cells = await runMemoryMatrix(harness, runs, o.seed, onCell, interrupt.signal);
  const ok = cells.every((c) => (c.firstForbidden !== null) === expectLoss(c));
  for (const line of matrixLines(cells)) out(line);
  if (interrupt.requested) {
    out(`INTERRUPTED by ${interrupt.stopSignal}: ${cells.length} cells done, ${ok ? 'each as the model predicts' : 'a cell differs from what the model predicts'} (seed ${o.seed})`);
    if (o.json) process.stdout.write(`${JSON.stringify({ ok: false, interrupted: interrupt.stopSignal, seed: o.seed, runs, cells })}\n`);
    return interrupt.exitStatus();
  }
  out(ok ? `OK: pages are lost exactly where the memory model allows it (seed ${o.seed})` : `FAILED: a cell differs from what the model predicts (seed ${o.seed})`);
  if (o.json) process.stdout.write(`${JSON.stringify({ ok, seed: o.seed, runs, cells })}\n`);
  return ok ? 0 : 1;
}

async function campaigns(o: StressOptions, harness: StressHarness, out: Out, interrupt: Interrupt, user: UserHarvesterRef | null): Promise<number> {
  const startedAt = new Date().toISOString();
  const session = new CampaignSession(o, harness, out, interrupt.signal, user);
  if (o.mutants.length === 0) await session.plainCampaigns();
  else await session.mutantCampaigns();
  const report = session.report(startedAt, interrupt.stopSignal);
  if (o.report !== null) {
    writeJsonReport(o.report, report);
    out(`report: ${o.report}`);
  }
  if (o.junit !== null) {
    writeJunit(o.junit, report);
    out(`junit: ${o.junit}`);
  }
  out(verdictLine(o, report));
  if (o.json) process.stdout.write(`${JSON.stringify(jsonSummary(o, report))}\n`);
  if (interrupt.requested) return interrupt.exitStatus();
  return report.ok ? 0 : 1;
}

/** The campaigns one command line asks for, run one after another on one harness. */
class CampaignSession {
  private readonly results: CampaignResult[] = [];
  private readonly verdicts: MutantVerdict[] = [];

  constructor(
    private readonly o: StressOptions,
    private readonly harness: StressHarness,
    private readonly out: Out,
    private readonly stop: AbortSignal,
    private readonly user: UserHarvesterRef | null,
  ) {}

  /** One campaign per mode, of the runs asked for (or the default count, or the time budget); or a preset's plan. */
  async plainCampaigns(): Promise<void> {
    const o = this.o;
    if (o.plan !== null) {
      this.out(`dirtyring stress --preset: ${describePlan(o.plan)}, seed ${o.seed}`);
      for (const c of o.plan) {
        if (this.stop.aborted) break;
        const spec: CampaignSpec = { ...this.baseSpec(c.mode), log: c.log, mutant: null, runs: c.runs, stopAtFirstForbidden: false };
        this.out(`dirtyring stress: ${describeCampaign(spec)}`);
        const r = await this.campaign(spec, `${c.mode} ${c.log}`);
        for (const line of campaignLines(r)) this.out(line);
      }
      for (const line of totalsLines(this.results, o.plan.map((c) => c.log))) this.out(line);
      return;
    }
    for (const mode of o.modes) {
      if (this.stop.aborted) break;
      const runs = o.runs ?? (o.timeBudgetMs !== null ? null : DEFAULT_CAMPAIGN_RUNS);
      const spec: CampaignSpec = { ...this.baseSpec(mode), mutant: null, runs, stopAtFirstForbidden: false };
      this.out(`dirtyring stress: ${describeCampaign(spec)}`);
      const r = await this.campaign(spec, mode === 'free' ? 'free' : `controlled/${o.strategy}`);
      for (const line of campaignLines(r)) this.out(line);
    }
  }

  /** Per mode, one campaign per mutant, each stopping at its first forbidden run; then the table. */
  async mutantCampaigns(): Promise<void> {
    const o = this.o;
    for (const mode of o.modes) {
      this.out(`dirtyring stress: ${o.mutants.length} mutant campaign(s), ${mode} mode${mode === 'controlled' ? `, ${o.strategy} strategy` : ''}, seed ${o.seed}`);
      for (const m of o.mutants) {
        if (this.stop.aborted) break;
        await this.mutantCampaign(mode, m);
      }
      if (this.stop.aborted) break;
    }
    for (const line of mutantTableLines(this.verdicts, o.modes)) this.out(line);
  }

  private async mutantCampaign(mode: StressMode, m: MutantProfile): Promise<void> {
    const notModelled = m.notModelledIn?.[mode];
    if (notModelled !== undefined) {
      this.verdicts.push({ mutant: m.name, mode, caught: false, caughtAtRun: null, bound: 0, runs: 0, outcome: null, traceFile: null, notApplicable: notModelled });
      this.out(`  ${m.name}: n/a in ${mode} mode — ${notModelled}`);
      return;
    }
    const bound = this.o.runs ?? m.bound[mode];
    const r = await this.campaign({ ...this.baseSpec(mode), mutant: m, runs: bound, stopAtFirstForbidden: true }, `${mode} ${m.name}`);
    const first = r.records.find((x) => x.cls === 'forbidden') ?? null;
    const verdict: MutantVerdict = {
      mutant: m.name,
      mode,
      caught: r.caught,
      caughtAtRun: r.caughtAtRun,
      bound,
      runs: r.runs,
      outcome: first?.outcome ?? null,
      traceFile: first?.shrunk?.traceFile ?? first?.traceFile ?? null,
      ...(r.interrupted && !r.caught && { interrupted: true as const }),
    };
    this.verdicts.push(verdict);
    for (const line of mutantVerdictLines(verdict, first)) this.out(line);
  }

  private baseSpec(mode: StressMode): Omit<CampaignSpec, 'mutant' | 'runs' | 'stopAtFirstForbidden'> {
    const o = this.o;
    return {
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
      coverageGuided: o.coverageGuided,
      memoryModel: o.memoryModel ?? 'sc',
      wmmHistory: o.wmmHistory,
      staleRate: o.staleRate,
      staleDepth: o.staleDepth,
      staleBound: o.staleBound,
      ringCap: o.ringCap,
      resetter: o.resetter,
      selfReap: o.selfReap,
      memoryMiB: mode === 'free' ? o.memoryMiB : null,
      scenario: null,
      userHarvester: this.user,
    };
  }

  /** One campaign, with a progress line on stderr. */
  private async campaign(spec: CampaignSpec, label: string): Promise<CampaignResult> {
    const progress = new Progress(process.stderr, label, expectedRuns(spec));
    const counts = { forbidden: 0, error: 0, interesting: 0 } satisfies ProgressCounts;
    const result = await this.harness.runCampaign(
      spec,
      (rec, done) => {
        if (rec.cls === 'forbidden') counts.forbidden++;
        else if (rec.cls === 'error') counts.error++;
        else if (rec.cls === 'interesting') counts.interesting++;
        progress.update(done, counts);
      },
      this.stop,
    );
    progress.finish();
    this.results.push(result);
    return result;
  }

  /** The report: every campaign; ok when every mutant was caught where modelled, or nothing failed. */
  report(startedAt: string, interrupted: StopSignal | null): StressReport {
    const { o, results, verdicts } = this;
    const { forbidden, errors } = unexpectedFailures(results);
    const covered = !o.minCoverage || unreachedLines(results).length === 0;
    // A plain campaign that made no run tested nothing: never OK.
    const ran = results.every((r) => r.runs > 0);
    const passed = o.mutants.length > 0 ? verdicts.every((v) => v.caught || v.notApplicable !== undefined) : forbidden === 0 && errors === 0 && covered && ran;
    // An interrupted campaign did not make the runs it was asked for: never OK.
    const ok = passed && interrupted === null;
    return {
      format: 'dirtyring-stress-report/1',
      startedAt,
      command: ['stress', ...o.argv],
      ok,
      campaigns: results,
      mutants: verdicts,
      mutationScore: mutationScore(verdicts, o.modes),
      interrupted,
    };
  }
}
