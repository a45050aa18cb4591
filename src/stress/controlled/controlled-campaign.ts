/**
 * The runs of a controlled campaign: each run as its strategy plans it; a failing run (or,
 * with checkEveryRun, every run) made a second time and its trace compared — the
 * FoundationDB-style self-check that the same seed, or the same choices, give the same run —;
 * a failing run written to a schedule file, and a forbidden one shrunk.
 */
// Namespace imports, used only for trace file paths: the browser app loads this module (Vite
// stubs node: modules there, and a named import of the stub fails when the module loads).
import * as path from 'node:path';
import { type CampaignSpec, campaignMemoryModel } from '../campaign-spec.js';
import { CoverageGuide } from '../coverage/coverage-guide.js';
import type { MemoryModel } from '../../kernel/wmm/ordering.js';
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
import type { Explanation } from './explain.js';
import { participantName } from './control-steps.js';

export class ControlledCampaignRuns implements CampaignRuns {
  private readonly strategy: SchedulingStrategy;
  private readonly mutants: number;
  private readonly guide: CoverageGuide | null;
  private readonly memoryModel: MemoryModel;

  constructor(
    private readonly spec: CampaignSpec,
    private readonly pool: ParticipantPool,
  ) {
    this.memoryModel = campaignMemoryModel(spec);
    // The mutant's constraints, and the options over them. Real arm64 kernels only offer the
    // ACQ_REL ring: under arm64 the pre-2022 one is only used when asked for.
    const ringCap = spec.ringCap ?? (this.memoryModel === 'arm64' ? 'ring-acqrel' : undefined);
    // Asking for a ring capability or a reset thread asks for ring scenarios (a reset thread:
    // with the standard harvester, the one that hands it the resets).
    const constraints = {
      ...(ringCap !== undefined && { ringCap }),
      ...spec.scenario,
      ...spec.mutant?.controlled,
      ...(spec.log !== null && { log: spec.log }),
      ...(spec.ringCap !== null && { log: 'ring' as const, ringCap: spec.ringCap }),
      ...(spec.resetter !== null && { log: 'ring' as const, resetter: spec.resetter }),
      ...(spec.resetter === 'thread' && { harvester: 'standard' as const }),
      // A user's harvester takes the standard harvester's place and makes its own resets.
      ...(spec.userHarvester !== null && { log: spec.userHarvester.log, harvester: 'standard' as const, resetter: 'inline' as const }),
    };
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
    let explanation = r.explanation;
    if (isForbidden(outcomes) && this.spec.shrink) {
      const s = await this.shrink(r, tag);
      shrunk = s?.record ?? null;
      explanation = s?.explanation ?? explanation;
      // shrinkFailure only gives up when its final case, replayed strictly, no longer fails:
      // the same choices gave two different runs.
      if (shrunk === null && !outcomes.includes('nondeterministic')) {
        deterministic = false;
        outcomes.push('nondeterministic');
      }
    }
    const traceFile = failing ? this.writeScheduleFile(r, outcomes, tag) : null;
    return this.record(index, r, outcomes, { deterministic, schedule: failing ? formatChoices(r.choices, r.roster) : null, traceFile, shrunk, explanation });
  }

  private execute(planned: StrategyRun, chooser: Chooser): Promise<ControlledRunResult> {
    const { memoryModel } = this;
    const user = this.spec.userHarvester;
    const threads = user !== null && user.threads !== null && user.threads > 0 ? { userHarvesterThreads: user.threads } : {};
    const scenario = user === null ? planned.scenario : { ...planned.scenario, userHarvester: user.url, ...threads };
    return runControlled({ scenario, mutants: this.mutants, seed: planned.seed, chooser, memoryModel, wmmHistory: this.spec.wmmHistory }, this.pool);
  }

  /** The run made again with the same choices: whether it gave the same trace. */
  private async runsAlike(planned: StrategyRun, r: ControlledRunResult): Promise<boolean> {
    const again = await this.execute(planned, planned.again(r));
    return again.traceHash === r.traceHash && again.abort !== 'divergence';
  }

  private writeScheduleFile(r: ControlledRunResult, outcomes: OutcomeKind[], tag: string): string | null {
    if (this.spec.traceDir === null) return null;
    const file = path.join(this.spec.traceDir, `controlled-${tag}.json`);
    writeJsonFile(file, controlledScheduleFile(r, this.spec.strategy, primaryOutcome(outcomes), outcomes));
    return file;
  }

  private async shrink(r: ControlledRunResult, tag: string): Promise<{ record: ShrunkRecord; explanation: Explanation | null } | null> {
    const s = await shrinkFailure(r, this.pool);
    if (s === null) return null;
    const outcomes = classifyControlled(s.run);
    let traceFile: string | null = null;
    if (this.spec.traceDir !== null) {
      traceFile = path.join(this.spec.traceDir, `controlled-${tag}-shrunk.json`);
      const from = { steps: s.from.decisions, vcpus: s.from.vcpus, stores: s.from.stores, pages: s.from.pages };
      const file = controlledScheduleFile(s.run, `${this.spec.strategy}, shrunk`, primaryOutcome(outcomes), outcomes, from);
      // The file's choices are the shrunk prefix: a strict replay follows them, then preempts nobody.
      writeJsonFile(traceFile, { ...file, choices: s.choices, schedule: formatChoices(s.choices, s.run.roster) });
    }
    return { record: { from: s.from, to: s.to, schedule: formatChoices(s.choices, s.run.roster), traceFile, attempts: s.attempts }, explanation: s.run.explanation };
  }

  private record(
    index: number,
    r: ControlledRunResult,
    outcomes: OutcomeKind[],
    found: Pick<RunRecord, 'deterministic' | 'schedule' | 'traceFile' | 'shrunk' | 'explanation'>,
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
      explanation: found.explanation ?? null,
      staleReads: r.staleReads,
    };
  }
}

/** A controlled run's first finding in words. */
export function controlledDetail(r: ControlledRunResult): string | null {
  const found = firstFinding(r);
  const inv = r.invariant;
  if (inv === null) return found;
  const at = `the invariant broke at step ${inv.step} (${participantName(inv.participant, r.roster)}): page ${inv.page} unrecorded and unprotected`;
  return found === null ? at : `${found}; ${at}`;
}

function firstFinding(r: ControlledRunResult): string | null {
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
