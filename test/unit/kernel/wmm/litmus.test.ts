/**
 * The weak memory model against the Linux kernel memory model's litmus tests
 * (tools/memory-model/litmus-tests: MP, SB, LB, WRC, ISA2, IRIW, S, R, CoRR, CoWR, Z6.0, with
 * and without their barriers). For each test and each profile: is the outcome the test asks
 * about reachable? The expected answers are LKMM's ("Sometimes" / "Never") where the model
 * follows it, and the model's known gaps where it does not (load buffering and the
 * coherence-order shapes: a load only ever reads a store that already executed, and the
 * modification order of a location is the order its stores executed).
 */
import { describe, expect, it } from 'vitest';
import { type LitmusOp, type LitmusTest, explore } from './litmus-harness.js';

const W = (st: string, v = 1): LitmusOp => ({ st, v });
const Wrel = (st: string, v = 1): LitmusOp => ({ st, v, rel: true });
const R = (ld: string, reg = 'r0'): LitmusOp => ({ ld, reg });
const Racq = (ld: string, reg = 'r0'): LitmusOp => ({ ld, reg, acq: true });
const MB: LitmusOp = { fence: 'mb' };
const WMB: LitmusOp = { fence: 'wmb' };
const RMB: LitmusOp = { fence: 'rmb' };

type Verdict = 'S' | 'N';
interface Row {
  readonly test: LitmusTest;
  /** LKMM's verdict (the file's Result line). */
  readonly lkmm: Verdict;
  /** The model's, per profile: sc, x86, arm64. */
  readonly model: readonly [Verdict, Verdict, Verdict];
}

const mpExists = (o: Record<string, number>): boolean => o['1:r0'] === 1 && o['1:r1'] === 0;
const chainExists = (o: Record<string, number>): boolean => o['1:r0'] === 1 && o['2:r0'] === 1 && o['2:r1'] === 0;
const iriwExists = (o: Record<string, number>): boolean => o['1:r0'] === 1 && o['1:r1'] === 0 && o['3:r0'] === 1 && o['3:r1'] === 0;

const ROWS: readonly Row[] = [
  { test: { name: 'MP+poonceonces', threads: [[W('x'), W('y')], [R('y'), R('x', 'r1')]], exists: mpExists }, lkmm: 'S', model: ['N', 'N', 'S'] },
  { test: { name: 'MP+pooncerelease+poacquireonce', threads: [[W('x'), Wrel('y')], [Racq('y'), R('x', 'r1')]], exists: mpExists }, lkmm: 'N', model: ['N', 'N', 'N'] },
  { test: { name: 'MP+fencewmbonceonce+fencermbonceonce', threads: [[W('x'), WMB, W('y')], [R('y'), RMB, R('x', 'r1')]], exists: mpExists }, lkmm: 'N', model: ['N', 'N', 'N'] },
  { test: { name: 'MP+fencewmbonceonce+poonceonce', threads: [[W('x'), WMB, W('y')], [R('y'), R('x', 'r1')]], exists: mpExists }, lkmm: 'S', model: ['N', 'N', 'S'] },
  {
    test: { name: 'SB+poonceonces', threads: [[W('x'), R('y')], [W('y'), R('x')]], exists: (o) => o['0:r0'] === 0 && o['1:r0'] === 0 },
    lkmm: 'S',
    model: ['N', 'S', 'S'],
  },
  {
    test: { name: 'SB+fencembonceonces', threads: [[W('x'), MB, R('y')], [W('y'), MB, R('x')]], exists: (o) => o['0:r0'] === 0 && o['1:r0'] === 0 },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  {
    test: { name: 'LB+poonceonces', threads: [[R('x'), W('y')], [R('y'), W('x')]], exists: (o) => o['0:r0'] === 1 && o['1:r0'] === 1 },
    lkmm: 'S',
    model: ['N', 'N', 'N'], // gap: no load buffering
  },
  {
    test: { name: 'LB+poacquireonce+pooncerelease', threads: [[R('x'), Wrel('y')], [Racq('y'), W('x')]], exists: (o) => o['0:r0'] === 1 && o['1:r0'] === 1 },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  {
    test: {
      name: 'LB+fencembonceonce+ctrlonceonce',
      threads: [[R('x'), { ifReg: 'r0', eq: 1, then: W('y') }], [R('y'), MB, W('x')]],
      exists: (o) => o['0:r0'] === 1 && o['1:r0'] === 1,
    },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  { test: { name: 'WRC+poonceonces+Once', threads: [[W('x')], [R('x'), W('y')], [R('y'), R('x', 'r1')]], exists: chainExists }, lkmm: 'S', model: ['N', 'N', 'S'] },
  {
    test: { name: 'WRC+pooncerelease+fencermbonceonce+Once', threads: [[W('x')], [R('x'), Wrel('y')], [R('y'), RMB, R('x', 'r1')]], exists: chainExists },
    lkmm: 'N',
    model: ['N', 'N', 'N'], // A-cumulative releases
  },
  { test: { name: 'ISA2+poonceonces', threads: [[W('x'), W('y')], [R('y'), W('z')], [R('z'), R('x', 'r1')]], exists: chainExists }, lkmm: 'S', model: ['N', 'N', 'S'] },
  {
    test: {
      name: 'ISA2+pooncerelease+poacquirerelease+poacquireonce',
      threads: [[W('x'), Wrel('y')], [Racq('y'), Wrel('z')], [Racq('z'), R('x', 'r1')]],
      exists: chainExists,
    },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  {
    // The dirty ring's 2022 shape: vCPU → harvester (acquire) → resetter (acquire), with the
    // harvester's middle store plain: the resetter may miss the payload.
    test: { name: 'ISA2+pooncerelease+poacquireonce+poacquireonce', threads: [[W('x'), Wrel('y')], [Racq('y'), W('z')], [Racq('z'), R('x', 'r1')]], exists: chainExists },
    lkmm: 'S',
    model: ['N', 'N', 'S'],
  },
  {
    test: { name: 'IRIW+poonceonces+OnceOnce', threads: [[W('x')], [R('x'), R('y', 'r1')], [W('y')], [R('y'), R('x', 'r1')]], exists: iriwExists },
    lkmm: 'S',
    model: ['N', 'N', 'S'],
  },
  {
    test: { name: 'IRIW+fencembonceonces+OnceOnce', threads: [[W('x')], [R('x'), MB, R('y', 'r1')], [W('y')], [R('y'), MB, R('x', 'r1')]], exists: iriwExists },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  {
    test: { name: 'S+poonceonces', threads: [[W('x', 2), W('y')], [R('y'), W('x')]], exists: (o) => o['x'] === 2 && o['1:r0'] === 1 },
    lkmm: 'S',
    model: ['N', 'N', 'N'], // gap: modification order = execution order
  },
  {
    test: { name: 'S+fencewmbonceonce+poacquireonce', threads: [[W('x', 2), WMB, W('y')], [Racq('y'), W('x')]], exists: (o) => o['x'] === 2 && o['1:r0'] === 1 },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  {
    test: { name: 'R+poonceonces', threads: [[W('x'), W('y')], [W('y', 2), R('x')]], exists: (o) => o['y'] === 2 && o['1:r0'] === 0 },
    lkmm: 'S',
    model: ['N', 'S', 'S'],
  },
  {
    test: { name: 'R+fencembonceonces', threads: [[W('x'), MB, W('y')], [W('y', 2), MB, R('x')]], exists: (o) => o['y'] === 2 && o['1:r0'] === 0 },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
  { test: { name: 'CoRR+poonceonce+Once', threads: [[W('x')], [R('x'), R('x', 'r1')]], exists: (o) => o['1:r0'] === 1 && o['1:r1'] === 0 }, lkmm: 'N', model: ['N', 'N', 'N'] },
  { test: { name: 'CoWR+poonceonce+Once', threads: [[W('x'), R('x')], [W('x', 2)]], exists: (o) => o['x'] === 1 && o['0:r0'] === 2 }, lkmm: 'N', model: ['N', 'N', 'N'] },
  {
    test: {
      name: 'Z6.0+pooncerelease+poacquirerelease+fencembonceonce',
      threads: [[W('x'), Wrel('y')], [Racq('y'), Wrel('z')], [W('z', 2), MB, R('x', 'r1')]],
      exists: (o) => o['1:r0'] === 1 && o['z'] === 2 && o['2:r1'] === 0,
    },
    lkmm: 'S',
    model: ['N', 'N', 'S'],
  },
  {
    test: { name: 'SB+xchg (value-returning atomics are full barriers)', threads: [[{ xchg: 'x', v: 1, reg: 'o' }, R('y')], [{ xchg: 'y', v: 1, reg: 'o' }, R('x')]], exists: (o) => o['0:r0'] === 0 && o['1:r0'] === 0 },
    lkmm: 'N',
    model: ['N', 'N', 'N'],
  },
];

const PROFILES = ['sc', 'x86', 'arm64'] as const;

describe('litmus tests: is the outcome reachable?', () => {
  for (const row of ROWS) {
    for (const [i, profile] of PROFILES.entries()) {
      const expected = row.model[i]!;
      it(`${row.test.name} under ${profile}: ${expected === 'S' ? 'sometimes' : 'never'} (LKMM: ${row.lkmm === 'S' ? 'sometimes' : 'never'})`, () => {
        const r = explore(row.test, profile);
        expect(r.reachable, `${row.test.name} (${profile}): outcomes ${[...r.outcomes].join(' | ')}`).toBe(expected === 'S');
      });
    }
  }
});

describe('the profiles against each other and against LKMM', () => {
  it('never allows what LKMM forbids, in any profile', () => {
    for (const row of ROWS.filter((r) => r.lkmm === 'N')) expect(row.model, row.test.name).toEqual(['N', 'N', 'N']);
  });

  it('every x86 outcome is an arm64 outcome, and every sc outcome an x86 one', () => {
    for (const row of ROWS) {
      const sc = explore(row.test, 'sc').outcomes;
      const x86 = explore(row.test, 'x86').outcomes;
      const arm = explore(row.test, 'arm64').outcomes;
      for (const o of sc) expect(x86.has(o), `${row.test.name}: sc outcome ${o} under x86`).toBe(true);
      for (const o of x86) expect(arm.has(o), `${row.test.name}: x86 outcome ${o} under arm64`).toBe(true);
    }
  });

  it('sc gives exactly the outcomes of plain interleavings', () => {
    // Message passing: of the 6 interleavings, (r0, r1) = (1, 0) is the one SC forbids.
    const r = explore(ROWS[0]!.test, 'sc');
    expect([...r.outcomes].map((o) => o.replace(/ x=1 y=1/, '')).sort()).toEqual(['1:r0=0 1:r1=0', '1:r0=0 1:r1=1', '1:r0=1 1:r1=1']);
    expect(r.runs).toBe(6);
  });
});
