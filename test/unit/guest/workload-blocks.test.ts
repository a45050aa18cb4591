/**
 * WorkloadProgram's block decode (peekStores / consumeStores): for a sequential guest it must
 * hand out exactly the stores its decode gives — same pages, same values, same halts at the
 * write limit — however the vCPU splits blocks (a prefix consumed, the rest decoded one by
 * one), and while the iteration moves. Other guests decode one instruction at a time.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/base/prng.js';
import { InsnKind, Instruction, StoreBlock } from '../../../src/guest/instruction.js';
import { type WorkloadConfig, WorkloadProgram } from '../../../src/guest/workloads.js';

const RANGES = [
  { baseGfn: 1000, pageCount: 40 },
  { baseGfn: 5000, pageCount: 30 },
];
const SEQUENTIAL: WorkloadConfig = { kind: 'sequential', seed: 3, ranges: RANGES, burstPages: 1, burstPercent: 0, writesPerIteration: 50 };
const STEPS = 3000;

/** Userspace moves the iteration every this many instructions (and at each hlt). */
const BUMP_EVERY = 73;

/**
 * The instruction stream as "gfn:value" (stores) or "hlt". With `blocks`, the vCPU side is
 * simulated: a peek of a random size, a random prefix executed, the rest decoded later; an
 * iteration move due at the end of a prefix lands between the peek and the consume.
 */
function stream(config: WorkloadConfig, blocks: boolean, seed: number): string[] {
  const globals = new Int32Array(new SharedArrayBuffer(4));
  const prog = new WorkloadProgram(config, 1, 2, globals);
  const prng = new Prng(seed);
  const insn = new Instruction();
  const block = new StoreBlock();
  const out: string[] = [];
  let nextBump = BUMP_EVERY;
  const bumpIfDue = (): void => {
    if (out.length !== nextBump) return;
    Atomics.add(globals, 0, 1);
    nextBump += BUMP_EVERY;
  };
  while (out.length < STEPS) {
    bumpIfDue();
    const n = blocks ? prog.peekStores(block, 1 + prng.below(16)) : 0;
    if (n > 0) {
      const j = Math.min(prng.below(n + 1), nextBump - out.length);
      for (let k = 0; k < j; k++) out.push(`${block.stride !== 0 ? block.first + k * block.stride : block.gfns[k]}:${block.value}`);
      bumpIfDue();
      prog.consumeStores(j);
      if (j > 0) continue;
    }
    prog.decode(insn);
    if (insn.kind === InsnKind.HALT) {
      out.push('hlt');
      Atomics.add(globals, 0, 1);
    } else {
      expect(insn.kind).toBe(InsnKind.STORE);
      out.push(`${insn.gfns[0]}:${insn.value}`);
    }
  }
  return out.slice(0, STEPS);
}

describe('workload block decode', () => {
  for (const seed of [1, 2, 3]) {
    it(`a sequential guest's blocks are its decoded stores, across ranges, write limits and iteration changes (seed ${seed})`, () => {
      const decoded = stream(SEQUENTIAL, false, seed);
      const blocked = stream(SEQUENTIAL, true, seed);
      expect(decoded).toContain('hlt');
      expect(decoded.some((s) => s.startsWith('5000:'))).toBe(true); // the second range is reached
      expect(blocked).toEqual(decoded);
    });
  }

  it('only a guest that draws nothing from its PRNG decodes in blocks', () => {
    const globals = new Int32Array(new SharedArrayBuffer(4));
    const block = new StoreBlock();
    const configs: WorkloadConfig[] = [
      { ...SEQUENTIAL, kind: 'random' },
      { ...SEQUENTIAL, burstPages: 4, burstPercent: 20 },
      { ...SEQUENTIAL, dirtyPagesPerSecond: 1000 },
    ];
    for (const c of configs) expect(new WorkloadProgram(c, 0, 1, globals).peekStores(block, 16)).toBe(0);
    expect(new WorkloadProgram(SEQUENTIAL, 0, 1, globals).peekStores(block, 16)).toBe(16);
  });
});
