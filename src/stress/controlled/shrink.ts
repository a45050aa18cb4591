/**
 * Shrinking a failing controlled run to a smaller one that fails the same way: fewer vCPUs,
 * fewer iterations, fewer stores, fewer pages, fewer collections, and fewer scheduling
 * decisions. Greedy, like property-based testing's shrinkers: try one reduction at a time,
 * keep it when the run still shows the same forbidden outcome, repeat until nothing helps or
 * the budget is spent.
 *
 * A reduced scenario is run by replaying the current choices leniently (a recorded choice that
 * cannot move any more is skipped; once they run out, nobody is preempted) and, when it still
 * fails, adopting the choices it actually executed. Finally the schedule itself is cut to the
 * shortest prefix that, followed by non-preemptive scheduling, still fails: those are the
 * decisions that matter. Under a weak memory model, each load that read an older store is then
 * tried with the newest one instead (past the prefix every load reads the newest anyway), so
 * the schedule keeps only the stale reads the failure needs. The result replays strictly to an
 * identical trace.
 */
import { now } from '../../base/clock.js';
import { type OutcomeKind, primaryOutcome } from '../outcome.js';
import { ReplayChooser, isReadFromChoice, readFromChoice } from './choosers.js';
import { classifyControlled } from './classify.js';
import { type ControlledRunResult, runControlled } from './engine.js';
import type { ParticipantPool } from './pool.js';
import { type ControlledScenario, scenarioRounds, totalStores, validateScenario } from './scenario.js';

export interface ShrinkOptions {
  /** Most candidate runs to try. */
  readonly maxAttempts?: number;
  /** Stop trying new candidates after this long. */
  readonly timeBudgetMs?: number;
}

export interface CaseSize {
  readonly vcpus: number;
  readonly rounds: number;
  readonly stores: number;
  readonly pages: number;
  readonly collections: number;
  /** Scheduling decisions: the recorded choices (after them, nobody is preempted). */
  readonly decisions: number;
  /** Of those, loads that read an older store than the newest (weak memory models). */
  readonly staleReads: number;
}

export interface ShrinkResult {
  readonly outcome: OutcomeKind;
  readonly from: CaseSize;
  readonly to: CaseSize;
  /** The shrunk run, as replaying `choices` strictly produces it. */
  readonly run: ControlledRunResult;
  /** The shrunk schedule: a prefix of the run's choices. */
  readonly choices: number[];
  readonly attempts: number;
}

/**
 * The default budget: shrinking a failing micro-run converges well within it, and a campaign
 * that finds many failures still ends (each costs at most this much more).
 */
const DEFAULT_MAX_ATTEMPTS = 400;
const DEFAULT_TIME_BUDGET_MS = 10_000;

function sizeOf(s: ControlledScenario, choices: readonly number[]): CaseSize {
  const staleReads = choices.filter((c) => isReadFromChoice(c) && c !== NEWEST).length;
  return { vcpus: s.vcpus, rounds: scenarioRounds(s), stores: totalStores(s), pages: s.pages, collections: s.collections, decisions: choices.length, staleReads };
}

/** The read-from decision "the newest store". */
const NEWEST = readFromChoice(0);

/** Lexicographic: fewer vCPUs first, then stores, iterations, pages, collections, decisions. */
function smaller(a: CaseSize, b: CaseSize): boolean {
  const ka = [a.vcpus, a.stores, a.rounds, a.pages, a.collections, a.decisions, a.staleReads];
  const kb = [b.vcpus, b.stores, b.rounds, b.pages, b.collections, b.decisions, b.staleReads];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]!;
  return false;
}

/** A reduction must still be a scenario a schedule file can hold (its replay validates it). */
function isConsistent(s: ControlledScenario): boolean {
  try {
    validateScenario(s, 'shrunk scenario');
    return true;
  } catch {
    return false;
  }
}

function withStores(s: ControlledScenario, stores: number[][][], extra: Partial<ControlledScenario> = {}): ControlledScenario {
  return { ...s, ...extra, stores };
}

function copyStores(s: ControlledScenario): number[][][] {
  return s.stores.map((mine) => mine.map((list) => [...list]));
}

/** Scenario reductions to try, smallest-looking first. */
function* scenarioCandidates(s: ControlledScenario, choices: readonly number[]): Generator<[ControlledScenario, number[]]> {
  // Drop a vCPU: its stores, and its choices (later participants move down by one).
  for (let v = s.vcpus - 1; s.vcpus > 1 && v >= 0; v--) {
    const stores = copyStores(s).filter((_, i) => i !== v);
    const p = v + 1;
    const remapped = choices.filter((c) => c !== p).map((c) => (c > p ? c - 1 : c));
    yield [withStores(s, stores, { vcpus: s.vcpus - 1 }), remapped];
  }
  // Drop an iteration.
  const rounds = scenarioRounds(s);
  for (let r = rounds - 1; rounds > 1 && r >= 0; r--) {
    yield [withStores(s, copyStores(s).map((mine) => mine.filter((_, k) => k !== r))), [...choices]];
  }
  // Fewer collections.
  if (s.collections > 0) yield [{ ...s, collections: 0 }, [...choices]];
  if (s.collections > 1) yield [{ ...s, collections: s.collections - 1 }, [...choices]];
  // Remove stores: halves, then quarters, ... then single stores.
  for (let v = 0; v < s.vcpus; v++) {
    for (let k = 0; k < rounds; k++) {
      const len = s.stores[v]![k]!.length;
      for (let chunk = Math.floor(len / 2); chunk >= 1; chunk = Math.floor(chunk / 2)) {
        for (let start = 0; start + chunk <= len; start += chunk) {
          const stores = copyStores(s);
          stores[v]![k]!.splice(start, chunk);
          yield [withStores(s, stores), [...choices]];
        }
      }
    }
  }
  yield* fewerPages(s, choices);
}

/**
 * Fewer pages: renumber the pages in use densely (keeping their order), or cut unused ones.
 * Only for a scenario in one memslot: page numbers of a multi-slot or SMRAM scenario say which
 * slot a page is in, so a multi-slot scenario is cut as one slot (one with SMRAM is not cut).
 */
function* fewerPages(s: ControlledScenario, choices: readonly number[]): Generator<[ControlledScenario, number[]]> {
  if (s.smmPages !== undefined && s.smmPages > 0) return;
  if (s.slotPages !== undefined) {
    const { slotPages: _slots, ...oneSlot } = s;
    s = oneSlot;
  }
  const used = [...new Set(s.stores.flat(2))].sort((a, b) => a - b);
  const maxUsed = used.length > 0 ? used[used.length - 1]! : 0;
  if (maxUsed + 1 < s.pages) yield [{ ...s, pages: maxUsed + 1 }, [...choices]];
  if (used.length > 0 && used.length < maxUsed + 1) {
    const index = new Map(used.map((p, i) => [p, i]));
    const stores = s.stores.map((mine) => mine.map((list) => list.map((p) => index.get(p)!)));
    yield [{ ...s, stores, pages: used.length }, [...choices]];
  }
}

/**
 * The smallest failing case found within the budget; null when its strict replay does not fail
 * again, which only nondeterministic runs do.
 */
export async function shrinkFailure(failing: ControlledRunResult, pool: ParticipantPool, options: ShrinkOptions = {}): Promise<ShrinkResult | null> {
  const target = primaryOutcome(classifyControlled(failing));
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const deadline = now() + (options.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS);
  let attempts = 0;
  const fails = (r: ControlledRunResult): boolean => classifyControlled(r).includes(target);
  const same = { mutants: failing.mutants, seed: failing.seed, memoryModel: failing.memoryModel, wmmHistory: failing.wmmHistory };
  const attempt = async (scenario: ControlledScenario, choices: readonly number[], strict: boolean): Promise<ControlledRunResult | null> => {
    if (attempts >= maxAttempts || now() > deadline) return null;
    attempts++;
    const r = await runControlled({ ...same, scenario, chooser: new ReplayChooser(choices, strict) }, pool);
    return r.abort === 'divergence' || !fails(r) ? null : r;
  };
  const from = sizeOf(failing.scenario, failing.choices);
  let scenario = failing.scenario;
  let choices = failing.choices;
  let size = from;

  // Reduce the scenario, adopting the executed choices of each success.
  for (let progress = true; progress && attempts < maxAttempts; ) {
    progress = false;
    for (const [cand, candChoices] of scenarioCandidates(scenario, choices)) {
      const candSize = sizeOf(cand, choices);
      if (!smaller(candSize, size) || !isConsistent(cand)) continue;
      const r = await attempt(cand, candChoices, false);
      if (r === null) {
        if (attempts >= maxAttempts || now() > deadline) break;
        continue;
      }
      scenario = cand;
      choices = r.choices;
      size = sizeOf(cand, r.choices);
      progress = true;
      break; // restart from the biggest reductions on the smaller case
    }
  }

  // Cut the schedule: the shortest prefix of the executed choices that, followed by
  // non-preemptive scheduling, still fails. `hi` only ever takes failing lengths, so the result
  // fails even where failing is not monotone in the prefix length.
  const shortestPrefix = async (executed: readonly number[]): Promise<number> => {
    let lo = 0;
    let hi = executed.length;
    while (lo < hi && attempts < maxAttempts && now() <= deadline) {
      const mid = (lo + hi) >>> 1;
      if ((await attempt(scenario, executed.slice(0, mid), true)) !== null) hi = mid;
      else lo = mid + 1;
    }
    return hi;
  };
  let prefix = choices.slice(0, await shortestPrefix(choices));
  // Then try dropping chunks of decisions from the prefix.
  for (let chunk = Math.floor(prefix.length / 2); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let start = 0; start + chunk <= prefix.length && attempts < maxAttempts && now() <= deadline; ) {
      const r = await attempt(scenario, [...prefix.slice(0, start), ...prefix.slice(start + chunk)], false);
      const shorter = r === null ? prefix.length : await shortestPrefix(r.choices);
      if (r !== null && shorter < prefix.length) prefix = r.choices.slice(0, shorter);
      else start += chunk;
    }
  }
  // Each stale read the prefix still has: does the failure need it? Try the newest store.
  for (let i = 0; i < prefix.length && attempts < maxAttempts && now() <= deadline; i++) {
    if (!isReadFromChoice(prefix[i]!) || prefix[i] === NEWEST) continue;
    const cand = [...prefix.slice(0, i), NEWEST, ...prefix.slice(i + 1)];
    const r = await attempt(scenario, cand, false);
    if (r !== null) prefix = r.choices.slice(0, Math.min(r.choices.length, await shortestPrefix(r.choices)));
  }
  // The final case, replayed strictly: its trace is what a replay of the file reproduces.
  // Every prefix adopted above failed when it was tried (a bisection cut short by the budget
  // keeps its last failing length), so a final case that passes means the same choices ran
  // differently: the runs are not deterministic. That is reported (null), not papered over
  // by retrying a longer schedule.
  const final = await runControlled({ ...same, scenario, chooser: new ReplayChooser(prefix, true) }, pool);
  if (!fails(final)) return null;
  return { outcome: target, from, to: sizeOf(scenario, prefix), run: final, choices: prefix, attempts };
}
