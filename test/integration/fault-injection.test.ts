/**
 * Fault injection: a vCPU worker, the controlled harvester's worker and a migration's
 * destination worker killed mid-run, in each log mode. The harness must name the worker that
 * died, end within its bounds (never hang), and lose no report: a campaign keeps every run,
 * the killed one recorded as an error, and goes on with a fresh worker.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDirtyLog } from '../../src/harness/run.js';
import { StressHarness } from '../../src/stress/campaign.js';
import { campaignSpec } from '../../src/stress/campaign-spec.js';
import { type StressReport, writeJsonReport } from '../../src/stress/report.js';
import type { LogMode } from '../../src/userspace/log-collectors.js';
import { runMigration } from '../../src/userspace/migration/migration.js';
import { WorkerKiller } from '../helpers/worker-faults.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const MODES: LogMode[] = ['ring', 'bitmap', 'clear'];
/** A killed worker is noticed at the next poll (its host saw it exit); the bounds are far above. */
const RUN_MS = 60_000;
const CAMPAIGN_MS = 90_000;

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(MODES)('--log %s: a worker killed mid-run', (log) => {
  it('a vCPU worker: the run ends, failed, naming the vCPU', async () => {
    const seed = testSeed(31);
    const killer = new WorkerKiller();
    const s = await withWatchdog(seed, RUN_MS, `run with vCPU 1 killed (${log})`, () =>
      runDirtyLog(
        { log, vcpus: 2, iterations: 6, seed },
        {
          spawn: killer.spawnVcpu,
          // During iteration 3: after iteration 2's report, the writers resume at once.
          onIteration: (r) => {
            if (r.iteration === 2) setTimeout(() => killer.kill(1), 1);
          },
        },
      ),
    );
    expect(s.ok, JSON.stringify(s)).toBe(false);
    // Noticed where userspace next waits on it (its poll, its park, a TLB flush it must acknowledge).
    expect(s.error, `seed ${seed}`).toMatch(/^(vCPU 1 thread died|TLB flush: vCPU 1 never acknowledged)/);
    expect(s.error, `seed ${seed}`).toContain('; worker: vCPU 1 worker exited with code 1');
    expect(s.iterations).toBeLessThan(6);
    expect(s.iterations).toBeGreaterThanOrEqual(2);
  }, timeoutAbove(RUN_MS));

  it('the controlled harvester (userspace participant 0): that run is an error naming it, the campaign keeps every run', async () => {
    const seed = testSeed(5);
    const killer = new WorkerKiller();
    const harness = new StressHarness({ spawnVcpu: killer.spawnVcpu, spawnControlled: killer.spawnControlled });
    try {
      const r = await withWatchdog(seed, CAMPAIGN_MS, `controlled campaign with the harvester killed (${log})`, () =>
        harness.runCampaign(campaignSpec('controlled', { runs: 8, seed, log }), (_rec, done) => {
          // As run 3 starts: its lease still sees a live worker (the exit event comes later), so
          // the run holds the worker when it dies.
          if (done === 3) killer.kill(0);
        }),
      );
      expect(r.runs, `seed ${seed}`).toBe(8);
      const errors = r.records.filter((x) => x.cls === 'error');
      expect(errors.length, `seed ${seed}: ${JSON.stringify(r.table)}`).toBe(1);
      expect(errors[0]!.detail, `seed ${seed}`).toMatch(/controlled worker 0|userspace|harvester/);
      expect(r.records.filter((x) => x.index > errors[0]!.index).every((x) => x.cls !== 'error')).toBe(true);
      const file = join(dir, `controlled-${log}.json`);
      writeJsonReport(file, { format: 'dirtyring-stress-report/1', startedAt: '', command: [], ok: false, campaigns: [r], mutants: [], mutationScore: {}, interrupted: null });
      const back = JSON.parse(readFileSync(file, 'utf8')) as StressReport;
      expect(back.campaigns[0]!.records.map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await harness.close();
    }
  }, timeoutAbove(CAMPAIGN_MS));

  it('the migration destination worker: the migration ends, failed, naming the destination', async () => {
    const seed = testSeed(12);
    const killer = new WorkerKiller();
    const vcpus = 2;
    const s = await withWatchdog(seed, RUN_MS, `migration with the destination killed (${log})`, () =>
      runMigration(
        { log, vcpus, seed, memoryBytes: 64 * 2 ** 20, bandwidthMiBs: 40, destinationThread: true },
        {
          spawn: killer.spawnVcpu,
          // The destination is spawned after the vCPUs and devices: index vcpus + devices.
          onRoundStart: (p) => {
            if (p.round === 1) setTimeout(() => killer.kill(vcpus), 200);
          },
        },
      ),
    );
    expect(s.ok, JSON.stringify({ ...s, roundReports: undefined })).toBe(false);
    expect(s.verified).toBe(false);
    expect(s.error, `seed ${seed}`).toMatch(/the destination thread died during the migration; worker: vCPU 2 worker exited/);
  }, timeoutAbove(RUN_MS));
});
