/**
 * The runs of a controlled campaign: each run as its strategy plans it; a failing run (or,
 * with checkEveryRun, every run) made a second time and its trace compared — the
 * FoundationDB-style self-check that the same seed, or the same choices, give the same run —;
 * a failing run written to a schedule file, and a forbidden one shrunk.
 */
import { join } from 'node:path';
import type { CampaignSpec } from '../campaign-spec.js';
import { CoverageGuide } from '../coverage/coverage-guide.js';
import { type OutcomeKind, isFailing, isForbidden, outcomeClass, primaryOutcome } from '../outcome.js';
import { type CampaignRuns, type RunRecord, type ShrunkRecord, mutantTag } from '../run-record.js';
import { controlledScheduleFile, writeJsonFile } from '../schedule-file.js';
import type { Chooser } from './choosers.js';
import { classifyControlled } from './classify.js';
import { type ControlledRunResult, runControlled } from './engine.js';
import type { ParticipantPool } from './pool.js';
import { describeScenario } from './scenario.js';
import { shrinkFailure } from './shrink.js';
import { type Exploration, type SchedulingStrategy, type StrategyRun, createStrategy, scenarioSource } from './strategies.js';
import { formatChoices } from './trace.js';

export class ControlledCampaignRuns implements CampaignRuns {
  private readonly strategy: SchedulingStrategy;
  private readonly mutants: number;
  private readonly guide: CoverageGuide | null;

  constructor(
    private readonly spec: CampaignSpec,
    private readonly pool: ParticipantPool,
  ) {
    // The mutant's constraints, and --log over them.
    const constraints = { ...spec.mutant?.controlled, ...(spec.log !== null && { log: spec.log }) };
    this.guide = spec.coverageGuided ? new CoverageGuide() : null;
    this.strategy = createStrategy(spec.strategy, spec, spec.seed, scenarioSource(constraints, this.guide));
    this.mutants = spec.mutant?.bit ?? 0;
  }

  exploration(): Exploration | null {
    return this.strategy.exploration();
  }

  async run(index: number, seed: number): Promise<RunRecord | null> {
    const planned = this.strategy.startRun(seed);
    if (planned === null) return null;
    const r = await this.execute(planned, planned.chooser);
    planned.end(r);
    this.guide?.observe(r.coverage);
    const outcomes = classifyControlled(r);
    const failing = isFailing(outcomes);
    let deterministic = failing || this.spec.checkEveryRun ? await this.runsAlike(planned, r) : null;
    if (deterministic === false) outcomes.push('nondeterministic');
    const tag = `${mutantTag(this.spec.mutant)}-${this.spec.strategy}-seed${planned.seed}${planned.fileTag}`;
    let shrunk: ShrunkRecord | null = null;
    if (isForbidden(outcomes) && this.spec.shrink) {
      shrunk = await this.shrink(r, tag);
      // shrinkFailure only gives up when its final case, replayed strictly, no longer fails:
      // the same choices gave two different runs.
      if (shrunk === null && !outcomes.includes('nondeterministic')) {
        deterministic = false;
        outcomes.push('nondeterministic');
      }
    }
    const traceFile = failing ? this.writeScheduleFile(r, outcomes, tag) : null;
    return this.record(index, r, outcomes, { deterministic, schedule: failing ? formatChoices(r.choices) : null, traceFile, shrunk });
  }

  private execute(planned: StrategyRun, chooser: Chooser): Promise<ControlledRunResult> {
    return runControlled({ scenario: planned.scenario, mutants: this.mutants, seed: planned.seed, chooser }, this.pool);
  }

  /** The run made again with the same choices: whether it gave the same trace. */
  private async runsAlike(planned: StrategyRun, r: ControlledRunResult): Promise<boolean> {
    const again = await this.execute(planned, planned.again(r));
    return again.traceHash === r.traceHash && again.abort !== 'divergence';
  }

  private writeScheduleFile(r: ControlledRunResult, outcomes: OutcomeKind[], tag: string): string | null {
    if (this.spec.traceDir === null) return null;
    const file = join(this.spec.traceDir, `controlled-${tag}.json`);
    writeJsonFile(file, controlledScheduleFile(r, this.spec.strategy, primaryOutcome(outcomes), outcomes));
    return file;
  }

  private async shrink(r: ControlledRunResult, tag: string): Promise<ShrunkRecord | null> {
    const s = await shrinkFailure(r, this.pool);
    if (s === null) return null;
    const outcomes = classifyControlled(s.run);
    let traceFile: string | null = null;
    if (this.spec.traceDir !== null) {
      traceFile = join(this.spec.traceDir, `controlled-${tag}-shrunk.json`);
      const from = { steps: s.from.decisions, vcpus: s.from.vcpus, stores: s.from.stores, pages: s.from.pages };
      const file = controlledScheduleFile(s.run, `${this.spec.strategy}, shrunk`, primaryOutcome(outcomes), outcomes, from);
      // The file's choices are the shrunk prefix: a strict replay follows them, then preempts nobody.
      writeJsonFile(traceFile, { ...file, choices: s.choices, schedule: formatChoices(s.choices) });
    }
    return { from: s.from, to: s.to, schedule: formatChoices(s.choices), traceFile, attempts: s.attempts };
  }

  private record(
    index: number,
    r: ControlledRunResult,
    outcomes: OutcomeKind[],
    found: Pick<RunRecord, 'deterministic' | 'schedule' | 'traceFile' | 'shrunk'>,
  ): RunRecord {
    const outcome = primaryOutcome(outcomes);
    return {
      index,
      seed: r.seed,
      mode: 'controlled',
      strategy: this.spec.strategy,
      mutant: this.spec.mutant?.name ?? null,
      config: describeScenario(r.scenario),
      scenario: r.scenario,
      outcome,
      cls: outcomeClass(outcome),
      outcomes,
      elapsedMs: r.elapsedMs,
      steps: r.steps,
      traceHash: r.traceHash,
      deterministic: found.deterministic,
      schedule: found.schedule,
      detail: controlledDetail(r),
      traceFile: found.traceFile,
      shrunk: found.shrunk,
      coverage: r.coverage,
    };
  }
}

/** A controlled run's first finding in words. */
export function controlledDetail(r: ControlledRunResult): string | null {
  const u = r.userspace;
  if (u?.lost[0]) {
    const p = u.lost[0];
    return `${p.reason === 'wrong-value' ? 'wrong value' : 'lost page'}: offset ${p.offset}, written by vCPU ${p.vcpu} in iteration ${p.iteration}`;
  }
  if (u?.mismatches[0]) return `copy mismatch: offset ${u.mismatches[0].offset} (last written by vCPU ${u.mismatches[0].writer})`;
  if (u?.wedged) return u.wedged;
  if (r.kernelBugs > 0) return `${r.kernelBugs} kernel bug(s): an out-of-bounds rmap access in reset`;
  if (r.kernelWarnings > 0) return `${r.kernelWarnings} kernel warning(s): a push into a full ring`;
  if (u && u.badEntries > 0) return `${u.badEntries} bad ring entries`;
  if (u && u.resetMismatches > 0) return `${u.resetMismatches} reset count mismatches`;
  if (r.abortDetail) return r.abortDetail;
  return r.errors[0] ?? null;
}
