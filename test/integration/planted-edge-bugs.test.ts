/**
 * Coverage is only worth reporting if reaching a state exercises it. For each edge state a
 * campaign reports, a protocol bug planted only there (test/planted/planted-bugs.ts: test code,
 * no CLI flag or mutant switch reaches it) must be caught by a default controlled campaign
 * within the state's bound, and by a free-running campaign within its bound. The controlled
 * bounds are about twice the worst case measured over six campaign seeds, the free ones about
 * three times the worst of three (their runs are not repeatable); README, "Stress coverage".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CampaignResult, StressHarness } from '../../src/stress/campaign.js';
import { campaignSpec } from '../../src/stress/campaign-spec.js';
import { EDGE_STATES, appliesTo } from '../../src/stress/coverage/edge-states.js';
import type { FreeRequest } from '../../src/stress/free/free-scenario.js';
import { plant } from '../planted/planted-bugs.js';
import { buildPlanted, plantedPlatform } from '../helpers/planted.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

/**
 * Runs within which a campaign must catch each state's planted bug: [controlled, free]. Free
 * bounds are at least 30: free runs' interleavings follow the machine's load, and on a loaded
 * 2-core machine bugs measured at run 2 were still uncaught after 10 runs.
 */
const BOUNDS: Readonly<Record<string, readonly [controlled: number | null, free: number]>> = {
  'ring.push.first-entry': [20, 30],
  'ring.push.last-entry': [150, 30],
  'ring.push.lap': [150, 30],
  'ring.harvest.first-entry': [20, 80],
  'ring.harvest.last-entry': [150, 30],
  'ring.harvest.lap': [250, 30],
  'ring.reset.first-entry': [40, 30],
  'ring.reset.last-entry': [260, 30],
  'ring.reset.lap': [150, 30],
  'ring.soft-full': [100, 30],
  'ring.reset-mid-ring': [140, 30],
  'coalescing.merge-forward': [90, 30],
  'coalescing.merge-backward': [150, 30],
  'coalescing.mask-high-half': [420, 30],
  'coalescing.break-slot': [90, 30],
  'coalescing.break-far': [420, 30],
  'bitmap.set.low-half': [30, 30],
  'bitmap.set.high-half': [70, 30],
  'bitmap.get.low-half': [80, 30],
  'bitmap.get.high-half': [250, 30],
  'bitmap.get.first-word': [270, 30],
  'bitmap.get.last-word': [270, 30],
  'bitmap.get.odd-tail': [80, 30],
  'bitmap.clear.low-half': [50, 60],
  'bitmap.clear.high-half': [590, 60],
  'bitmap.clear.first-word': [690, 60],
  'bitmap.clear.last-word': [590, 60],
  'bitmap.clear.odd-tail': [60, 80],
  'clear.chunk-first-page': [440, 60],
  'clear.chunk-last-page': [730, 60],
  'clear.slot-end-chunk': [590, 60],
  'memslots.second-slot': [60, 30],
  'memslots.smm-record': [150, 45],
  'memslots.smm-reprotect': [290, 45],
  'tlb.stale-store-while-flush-waits': [150, 30],
  'page-track.tracked-store': [null, 30],
  'page-track.ring-full-exit': [null, 30],
};

/**
 * Bugs that keep their own state from being recorded (a merge that never happens, a record
 * that goes elsewhere, a flush request taken away before the store is looked at). For every
 * other state, the run that caught the bug must also show the state reached.
 */
const HIDES_ITS_STATE = new Set([
  'coalescing.merge-forward',
  'coalescing.merge-backward',
  'coalescing.mask-high-half',
  'coalescing.break-slot',
  'coalescing.break-far',
  'memslots.second-slot',
  'memslots.smm-record',
  'memslots.smm-reprotect',
  'tlb.stale-store-while-flush-waits',
]);

/** The campaign caught the bug, in a run that reached the state (unless the bug hides it). */
function expectCaughtThere(r: CampaignResult, id: string, seed: number): void {
  expect(r.caught, `seed ${seed}: not caught in ${r.runs} runs`).toBe(true);
  const first = r.records.find((x) => x.cls === 'forbidden')!;
  if (!HIDES_ITS_STATE.has(id)) expect(first.coverage?.[id] ?? 0, `seed ${seed}: run ${first.seed} did not reach ${id}`).toBeGreaterThan(0);
}

/** Free runs with page tracking on a small guest, its notification rings as small as they go. */
const TRACKED: FreeRequest = { track: { pages: 64 }, memoryMiB: [1], trackRingEntries: 512 };

/** A campaign's bounds, with the slack the machine needs: a run takes milliseconds (controlled) or a second (free). */
const CONTROLLED_MS_PER_RUN = 300;
const FREE_MS_PER_RUN = 6_000;

beforeAll(buildPlanted);

describe('every edge state has a planted bug and a bound in each mode it applies to', () => {
  it('and nothing else does', () => {
    const recorded = EDGE_STATES.filter((s) => s.edge !== null).map((s) => s.id);
    expect(Object.keys(BOUNDS).sort()).toEqual([...recorded].sort());
    for (const s of EDGE_STATES.filter((x) => x.edge !== null)) expect(BOUNDS[s.id]![0] === null, s.id).toBe(!appliesTo(s, 'controlled'));
  });
});

describe('planted edge bugs, default controlled campaigns', () => {
  const seed = testSeed(1000);
  for (const s of EDGE_STATES.filter((x) => appliesTo(x, 'controlled'))) {
    const bound = BOUNDS[s.id]![0]!;
    const ms = bound * CONTROLLED_MS_PER_RUN;
    it(`${s.id}: caught within ${bound} runs`, async () => {
      const harness = new StressHarness(plantedPlatform(s.id));
      try {
        const spec = campaignSpec('controlled', { seed, runs: bound, stopAtFirstForbidden: true });
        const r = await withWatchdog(seed, ms, `controlled campaign with ${s.id}'s bug`, () => harness.runCampaign(spec));
        expectCaughtThere(r, s.id, seed);
      } finally {
        await harness.close();
      }
    }, timeoutAbove(ms));
  }
});

describe('planted edge bugs, free-running campaigns', () => {
  const seed = testSeed(2000);
  let harness: StressHarness | null = null;
  afterAll(() => harness?.close());
  for (const s of EDGE_STATES.filter((x) => appliesTo(x, 'free'))) {
    const bound = BOUNDS[s.id]![1];
    const ms = bound * FREE_MS_PER_RUN;
    it(`${s.id}: caught within ${bound} runs`, async () => {
      harness = new StressHarness(plantedPlatform(s.id));
      // Userspace runs in this thread in free runs: the bug goes here too.
      const undo = plant(s.id);
      try {
        const request = s.structure === 'page-track' ? TRACKED : {};
        const mutant = { name: `planted ${s.id}`, bit: 0, controlled: {}, free: request, bound: { free: bound, controlled: 0 }, symptom: '' };
        const spec = campaignSpec('free', { seed, runs: bound, stopAtFirstForbidden: true, mutant });
        const r = await withWatchdog(seed, ms, `free campaign with ${s.id}'s bug`, () => harness!.runCampaign(spec));
        expectCaughtThere(r, s.id, seed);
      } finally {
        undo();
        await harness.close();
        harness = null;
      }
    }, timeoutAbove(ms));
  }
});
