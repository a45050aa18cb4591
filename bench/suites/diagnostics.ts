/**
 * 0. Diagnostics: the cost of the primitives every emulator path is made of, on this machine
 * and Node version. They explain the other figures: in this V8, Atomics operations are calls
 * into a builtin rather than inlined machine instructions, so each one costs several ns where a
 * plain typed-array access costs about one. Reported as ns per operation, with the plain
 * access as the baseline (ratio = plain speed share).
 */
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';

const WORDS = 8192;

function timeNsPerOp(fn: () => number, ops: number, repeats: number): number[] {
  for (let w = 0; w < 3; w++) fn();
  const out: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    fn();
    out.push(((now() - t0) * 1e6) / ops);
  }
  return out;
}

export const diagnosticsSuite: Suite = {
  id: 'diagnostics',
  title: '0. primitives (diagnostics)',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const i32 = new Int32Array(new SharedArrayBuffer(WORDS * 4));
    const passes = 200;
    const ops = WORDS * passes;
    const repeats = ctx.quick ? 7 : 15;
    let sink = 0;
    const plainLoad = (): number => {
      let s = 0;
      for (let p = 0; p < passes; p++) for (let i = 0; i < WORDS; i++) s = (s + i32[i]!) | 0;
      return (sink = s);
    };
    const atomicLoad = (): number => {
      let s = 0;
      for (let p = 0; p < passes; p++) for (let i = 0; i < WORDS; i++) s = (s + Atomics.load(i32, i)) | 0;
      return (sink = s);
    };
    const plainStore = (): number => {
      for (let p = 0; p < passes; p++) for (let i = 0; i < WORDS; i++) i32[i] = p;
      return 0;
    };
    const atomicStore = (): number => {
      for (let p = 0; p < passes; p++) for (let i = 0; i < WORDS; i++) Atomics.store(i32, i, p);
      return 0;
    };
    const nowCalls = (): number => {
      let s = 0;
      for (let i = 0; i < ops / 16; i++) s += performance.now();
      return (sink = s);
    };
    const pl: number[] = [];
    const al: number[] = [];
    const ps: number[] = [];
    const as: number[] = [];
    for (let r = 0; r < repeats; r++) {
      pl.push(...timeNsPerOp(plainLoad, ops, 1));
      al.push(...timeNsPerOp(atomicLoad, ops, 1));
      ps.push(...timeNsPerOp(plainStore, ops, 1));
      as.push(...timeNsPerOp(atomicStore, ops, 1));
    }
    const nowNs = timeNsPerOp(nowCalls, ops / 16, repeats);
    if (sink === 0.5) ctx.log('');
    ctx.reporter.add({ id: 'diag.atomics-load', section, name: 'Atomics.load vs plain load (Int32Array on a SAB)', unit: 'ns', better: 'lower', samples: al, baseline: { name: 'plain load', samples: pl } });
    ctx.reporter.add({ id: 'diag.atomics-store', section, name: 'Atomics.store vs plain store', unit: 'ns', better: 'lower', samples: as, baseline: { name: 'plain store', samples: ps } });
    ctx.reporter.add({ id: 'diag.performance-now', section, name: 'performance.now() call', unit: 'ns', better: 'lower', samples: nowNs });
  },
};
