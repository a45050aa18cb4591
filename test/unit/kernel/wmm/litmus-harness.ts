/**
 * Litmus tests on the weak memory model without workers: each test is a few threads of loads,
 * stores and fences on named locations (all 0 at first); the real DfsExplorer enumerates every
 * interleaving and every store each load may read (no bounds), and the harness collects the
 * outcomes (registers and final values). `sc` runs the same model but always reads the newest
 * store: plain interleavings.
 */
import { DfsExplorer } from '../../../../src/stress/controlled/dfs.js';
import type { Chooser } from '../../../../src/stress/controlled/choosers.js';
import { WeakModel, allocateWmmState } from '../../../../src/kernel/wmm/model.js';
import { Access, Atomic, Barrier, type MemoryModel, profileOf } from '../../../../src/kernel/wmm/ordering.js';

export type LitmusOp =
  | { readonly st: string; readonly v: number; readonly rel?: true }
  | { readonly ld: string; readonly reg: string; readonly acq?: true }
  | { readonly fence: 'rmb' | 'wmb' | 'mb' }
  | { readonly xchg: string; readonly v: number; readonly reg: string }
  | { readonly ifReg: string; readonly eq: number; readonly then: LitmusOp };

export interface LitmusTest {
  readonly name: string;
  readonly threads: readonly (readonly LitmusOp[])[];
  /** The outcome the test asks about, over registers (`1:r0`) and final values (`x`). */
  readonly exists: (o: Readonly<Record<string, number>>) => boolean;
}

export interface Exploration {
  readonly outcomes: Set<string>;
  /** Whether some outcome satisfies `exists`. */
  readonly reachable: boolean;
  readonly runs: number;
}

const HISTORY = 8;

function locationsOf(test: LitmusTest): string[] {
  const names = new Set<string>();
  const visit = (op: LitmusOp): void => {
    if ('st' in op) names.add(op.st);
    else if ('ld' in op) names.add(op.ld);
    else if ('xchg' in op) names.add(op.xchg);
    else if ('ifReg' in op) visit(op.then);
  };
  for (const ops of test.threads) ops.forEach(visit);
  return [...names].sort();
}

/** One execution under `chooser`; returns the outcome as `name=value` pairs. */
function runOnce(test: LitmusTest, profile: MemoryModel, chooser: Chooser): Record<string, number> {
  const locs = locationsOf(test);
  const model = new WeakModel(
    allocateWmmState({
      threads: test.threads.length,
      history: HISTORY,
      profile: profileOf(profile === 'sc' ? 'arm64' : profile),
      cumulative: true,
      locations: locs.length,
      syncObjects: 0,
      eventCapacity: 0,
    }),
  );
  locs.forEach((_, i) => model.init(i, 0, 0));
  const regs: Record<string, number> = {};
  const pcs = test.threads.map(() => 0);
  let last = -1;
  for (let step = 0; ; step++) {
    const enabled = pcs.map((pc, t) => (pc < test.threads[t]!.length ? t : -1)).filter((t) => t >= 0);
    if (enabled.length === 0) break;
    const t = chooser.choose(step, enabled, last);
    const op = test.threads[t]![pcs[t]!++]!;
    exec(model, t, op, locs, regs, (n, loc) => (profile === 'sc' ? 0 : chooser.chooseReadFrom(step, n, loc, t)));
    last = t;
  }
  for (const [i, name] of locs.entries()) regs[name] = model.newest(i);
  return regs;
}

function exec(
  model: WeakModel,
  t: number,
  op: LitmusOp,
  locs: readonly string[],
  regs: Record<string, number>,
  decide: (n: number, loc: number) => number,
): void {
  if ('st' in op) {
    model.store(t, locs.indexOf(op.st), op.v, 0, op.rel ? Access.RELEASE : Access.ONCE);
  } else if ('ld' in op) {
    const loc = locs.indexOf(op.ld);
    const n = model.candidates(t, loc);
    regs[`${t}:${op.reg}`] = model.read(t, loc, op.acq ? Access.ACQUIRE : Access.ONCE, n > 1 ? decide(n, loc) : 0);
  } else if ('fence' in op) {
    model.fence(t, op.fence === 'rmb' ? Barrier.RMB : op.fence === 'wmb' ? Barrier.WMB : Barrier.MB);
  } else if ('xchg' in op) {
    const loc = locs.indexOf(op.xchg);
    regs[`${t}:${op.reg}`] = model.rmwRead(t, loc, Atomic.FULL);
    model.rmwWrite(t, loc, op.v, 0, Atomic.FULL);
  } else if (regs[`${t}:${op.ifReg}`] === op.eq) {
    exec(model, t, op.then, locs, regs, decide);
  }
}

/** Every outcome of `test` under `profile`: all interleavings, all permitted reads. */
export function explore(test: LitmusTest, profile: MemoryModel): Exploration {
  const dfs = new DfsExplorer(Infinity, Infinity);
  const outcomes = new Set<string>();
  let reachable = false;
  let runs = 0;
  do {
    const o = runOnce(test, profile, dfs.nextRun());
    runs++;
    outcomes.add(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(' '));
    if (test.exists(o)) reachable = true;
  } while (dfs.advance());
  return { outcomes, reachable, runs };
}
