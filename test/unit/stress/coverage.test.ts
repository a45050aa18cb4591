/**
 * Campaign coverage: the catalog of edge states against the recording layout, a run's coverage
 * from its counters, the campaign tally (n/a states, the first run, the unreached list), and
 * the coverage-guided generator's steering.
 */
import { describe, expect, it } from 'vitest';
import { CoverageLayout, type EdgeName } from '../../../src/kernel/coverage-layout.js';
import { CoverageGuide } from '../../../src/stress/coverage/coverage-guide.js';
import { CoverageTally, runCoverage } from '../../../src/stress/coverage/campaign-coverage.js';
import { EDGE_STATES, appliesTo } from '../../../src/stress/coverage/edge-states.js';

const ALL_EDGES = Object.keys(CoverageLayout.floats) as EdgeName[];

describe('the edge-state catalog', () => {
  it('names every recorded counter exactly once, with unique ids', () => {
    const recorded = EDGE_STATES.flatMap((s) => (s.edge === null ? [] : [s.edge]));
    expect([...recorded].sort()).toEqual([...ALL_EDGES].sort());
    expect(new Set(EDGE_STATES.map((s) => s.id)).size).toBe(EDGE_STATES.length);
  });

  it('leaves page tracking out of controlled mode and dirty-limit out of both, saying why', () => {
    const na = (mode: 'free' | 'controlled'): string[] => EDGE_STATES.filter((s) => !appliesTo(s, mode)).map((s) => s.id);
    expect(na('controlled')).toEqual(['page-track.tracked-store', 'page-track.ring-full-exit', 'dirty-limit.throttled']);
    expect(na('free')).toEqual(['dirty-limit.throttled']);
    for (const s of EDGE_STATES) for (const reason of Object.values(s.notApplicable ?? {})) expect(reason.length).toBeGreaterThan(20);
  });
});

describe('coverage of runs and campaigns', () => {
  const sums = (hits: Partial<Record<EdgeName, number>>): Float64Array => {
    const f = new Float64Array(CoverageLayout.floatCount);
    for (const [k, v] of Object.entries(hits)) f[CoverageLayout.floats[k as EdgeName]] = v;
    return f;
  };

  it('a run reports the states it reached, by id, and nothing else', () => {
    expect(runCoverage(sums({ RING_SOFT_FULL: 3, SMM_RECORD: 1 }))).toEqual({ 'ring.soft-full': 3, 'memslots.smm-record': 1 });
  });

  it('a campaign counts runs, hits and the first run per state, lists the unreached and marks n/a rows', () => {
    const tally = new CoverageTally('controlled');
    tally.add(runCoverage(sums({ RING_SOFT_FULL: 3 })));
    tally.add(null);
    tally.add(runCoverage(sums({ RING_SOFT_FULL: 1, TLB_STALE_STORE_FLUSH_WAITS: 2 })));
    const c = tally.result();
    const row = (id: string) => c.rows.find((r) => r.id === id)!;
    expect(c.runs).toBe(3);
    expect(row('ring.soft-full')).toMatchObject({ runs: 2, hits: 4, firstRun: 1, applicable: true });
    expect(row('tlb.stale-store-while-flush-waits')).toMatchObject({ runs: 1, hits: 2, firstRun: 3 });
    expect(row('page-track.tracked-store')).toMatchObject({ applicable: false, runs: 0 });
    expect(row('page-track.tracked-store').reason).toMatch(/does not model page write-tracking/);
    expect(c.applicable).toBe(35);
    expect(c.reached).toBe(2);
    expect(c.unreached).toHaveLength(33);
    expect(c.unreached).not.toContain('ring.soft-full');
    expect(c.unreached).not.toContain('page-track.tracked-store');
  });
});

describe('the coverage-guided generator', () => {
  it('steers most runs toward unreached states, with each request a function of the seed', () => {
    const guide = new CoverageGuide();
    const requests = Array.from({ length: 200 }, (_, seed) => guide.request(seed));
    const steered = requests.filter((r) => r !== null);
    expect(steered.length).toBeGreaterThan(140);
    expect(new CoverageGuide().request(17)).toEqual(guide.request(17));
    expect(steered.some((r) => r!.shape === 'flood')).toBe(true);
    expect(steered.some((r) => r!.smm === true)).toBe(true);
  });

  it('aims at what is still unreached, and once everything is reached, at the least reached', () => {
    const guide = new CoverageGuide();
    const all = Object.fromEntries(EDGE_STATES.filter((s) => appliesTo(s, 'controlled')).map((s) => [s.id, 1]));
    const { 'memslots.smm-record': _, ...allButSmm } = all;
    guide.observe(allButSmm);
    for (let seed = 0; seed < 50; seed++) {
      guide.request(seed);
      expect([null, 'memslots.smm-record']).toContain(guide.lastTarget);
    }
    guide.observe(all);
    const targets = new Set(Array.from({ length: 200 }, (_, seed) => (guide.request(seed), guide.lastTarget)));
    expect(targets.has('memslots.smm-record')).toBe(true);
    expect(targets.has(null)).toBe(true);
  });
});
