/**
 * Live migration with real vCPU worker threads writing all along: byte-exact under every
 * logging mode, broken harvesters caught by the comparison, dirty-limit turning a migration
 * that cannot converge into one that does, and the dirty-rate measures agreeing.
 * Seeds are fixed (DIRTYRING_SEED overrides) and printed on failure; nothing asserts on time.
 */
import { describe, expect, it } from 'vitest';
import { Mutant } from '../../src/userspace/known-bugs.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { measureDirtyRate } from '../../src/userspace/migration/dirty-rate.js';
import type { MigrationConfig } from '../../src/userspace/migration/migration-config.js';
import type { MigrationSummary } from '../../src/userspace/migration/migration-report.js';
import { runMigration } from '../../src/userspace/migration/migration.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

const spawn = spawnNodeVcpuWorker;
const MiB = 2 ** 20;
/** A migration's watchdog (MIGRATE_MS, or LONG_MIGRATE_MS where the test asks) and a dirty-rate measure's. */
const MIGRATE_MS = 90_000;
const LONG_MIGRATE_MS = 120_000;
const RATE_MS = 60_000;

function migrate(config: Partial<MigrationConfig>, what: string, ms = MIGRATE_MS): Promise<MigrationSummary> {
  const seed = config.seed ?? 0;
  return withWatchdog(seed, ms, what, () => runMigration(config, { spawn }));
}

function context(s: MigrationSummary): string {
  const { roundReports, ...rest } = s;
  return `seed ${s.seed} (${s.log}): ${JSON.stringify({ ...rest, rounds: roundReports.map((r) => [r.kind, r.pagesSent, r.remainingPages]) })}`;
}

function expectVerified(s: MigrationSummary): void {
  const c = context(s);
  expect(s.error, c).toBeNull();
  expect(s.mismatchedPages, c).toBe(0);
  expect(s.verified, c).toBe(true);
  expect(s.resetMismatches, c).toBe(0);
  expect(s.badRecords, c).toBe(0);
  expect(s.kernelWarnings, c).toBe(0);
  expect(s.ok, c).toBe(true);
  // A real migration: the bulk pass sent everything, the guest kept writing, the last round
  // was a stop-and-copy.
  expect(s.roundReports[0]!.kind, c).toBe('bulk');
  expect(s.roundReports[0]!.pagesSent, c).toBe(s.memoryBytes / 4096);
  expect(s.roundReports.at(-1)!.kind, c).toBe('stop-and-copy');
  expect(s.guestWrites, c).toBeGreaterThan(0);
  expect(s.pagesSent, c).toBeGreaterThan(s.memoryBytes / 4096);
}

describe('migration with 4 vCPU threads verifies byte for byte', () => {
  it.each(['ring', 'bitmap', 'clear'] as const)('--log %s', async (log) => {
    const seed = testSeed(701);
    const s = await migrate({ log, vcpus: 4, memoryBytes: 64 * MiB, seed }, `migrate --log ${log}`);
    expectVerified(s);
    if (log === 'ring') expect(s.entriesReset, context(s)).toBe(s.records);
    else expect(s.getCalls, context(s)).toBeGreaterThan(0);
    if (log === 'clear') expect(s.clearCalls, context(s)).toBeGreaterThan(0);
  }, timeoutAbove(MIGRATE_MS));

  it('manual protect with initially-set: each chunk is protected only when the bulk pass reaches it', async () => {
    const seed = testSeed(702);
    const s = await migrate({ log: 'clear', initiallySet: true, clearChunkPages: 1024, vcpus: 4, memoryBytes: 64 * MiB, seed }, 'initially-set');
    expectVerified(s);
    expect(s.clearCalls, context(s)).toBeGreaterThanOrEqual((64 * MiB) / 4096 / 1024);
  }, timeoutAbove(MIGRATE_MS));

  it('a separate destination thread applies pages from the wire, with DMA devices writing too', async () => {
    const seed = testSeed(703);
    const ring = await migrate(
      { log: 'ring', vcpus: 2, deviceWriters: 1, destinationThread: true, memoryBytes: 32 * MiB, seed },
      'destination thread (ring + devices)',
    );
    expectVerified(ring);
    expect(ring.deviceWrites, context(ring)).toBeGreaterThan(0);
    expect(ring.destinationThread, context(ring)).toBe(true);
    const bitmap = await migrate(
      { log: 'bitmap', vcpus: 2, deviceWriters: 1, destinationThread: true, memoryBytes: 32 * MiB, seed },
      'destination thread (bitmap + devices)',
    );
    expectVerified(bitmap);
  }, timeoutAbove(MIGRATE_MS, MIGRATE_MS));
});

describe('broken harvesters are caught as mismatches', () => {
  it.each(['ring', 'clear'] as const)('copy-before-reset with --log %s: pages read before their re-arm (reset, CLEAR) miss the writes made in between', async (log) => {
    const seed = testSeed(711);
    const s = await migrate(
      { log, vcpus: 4, memoryBytes: 16 * MiB, dirtyRateMiBs: 100, mutants: Mutant.COPY_BEFORE_RESET, seed },
      `copy-before-reset ${log}`,
    );
    const c = context(s);
    expect(s.error, c).toBeNull();
    expect(s.verified, c).toBe(false);
    expect(s.ok, c).toBe(false);
    expect(s.mismatchedPages, c).toBeGreaterThan(0);
    expect(s.mismatches[0], c).toMatchObject({ slot: 1 });
  }, timeoutAbove(MIGRATE_MS));

  it.each(['ring', 'bitmap', 'clear'] as const)('no-final-stop with --log %s: writes after the last sync never reach the destination', async (log) => {
    const seed = testSeed(712);
    const s = await migrate({ log, vcpus: 4, memoryBytes: 16 * MiB, dirtyRateMiBs: 50, mutants: Mutant.NO_FINAL_STOP, seed }, `no-final-stop ${log}`);
    const c = context(s);
    expect(s.error, c).toBeNull();
    expect(s.verified, c).toBe(false);
    expect(s.mismatchedPages, c).toBeGreaterThan(0);
    // The missing writes are the stop-and-copy round's (or later): the guest ran past the sync.
    expect(s.mismatches.some((m) => m.sourceRound > m.destinationRound), c).toBe(true);
  }, timeoutAbove(MIGRATE_MS));
});

describe('a kernel bug is caught too', () => {
  it('late-soft-full: the rings overflow, the kernel warns, and the migration fails', async () => {
    const seed = testSeed(715);
    const s = await migrate(
      { log: 'ring', vcpus: 4, ringEntries: 256, memoryBytes: 16 * MiB, dirtyRateMiBs: 0, maxRounds: 4, mutants: Mutant.LATE_SOFT_FULL, seed },
      'late-soft-full',
    );
    const c = context(s);
    expect(s.ok, c).toBe(false);
    expect(s.kernelWarnings, c).toBeGreaterThan(0);
  }, timeoutAbove(MIGRATE_MS));
});

describe('dirty-limit', () => {
  it('turns a migration that cannot converge into one that does (same seed, same workload)', async () => {
    const seed = testSeed(721);
    // 2 vCPUs each paced to 100 MiB/s of page writes over 32 MiB, a 50 MiB/s link: every
    // round re-dirties most of memory. With 256-entry rings, a throttled vCPU dirties at
    // most ~192 pages between two syncs, 2 × 192 pages < the 640 pages that fit in 50 ms.
    const common: Partial<MigrationConfig> = {
      log: 'ring',
      vcpus: 2,
      memoryBytes: 32 * MiB,
      ringEntries: 256,
      dirtyRateMiBs: 100,
      bandwidthMiBs: 50,
      maxDowntimeMs: 50,
      maxRounds: 10,
      dirtyLimitPeriodMs: 250,
      seed,
    };
    const free = await migrate(common, 'without dirty-limit', LONG_MIGRATE_MS);
    const limited = await migrate({ ...common, dirtyLimitMiBs: 1 }, 'with dirty-limit', LONG_MIGRATE_MS);
    expectVerified(free);
    expectVerified(limited);
    expect(free.converged, context(free)).toBe(false);
    expect(free.rounds, context(free)).toBe(11);
    expect(free.dirtyLimit, context(free)).toBeNull();
    expect(limited.converged, context(limited)).toBe(true);
    expect(limited.dirtyLimit?.startedAtMs, context(limited)).not.toBeNull();
    expect(limited.dirtyLimit!.sleeps, context(limited)).toBeGreaterThan(0);
    expect(Math.max(...limited.dirtyLimit!.throttleUs), context(limited)).toBeGreaterThan(0);
    expect(limited.finalPages, context(limited)).toBeLessThan(free.finalPages);
  }, timeoutAbove(LONG_MIGRATE_MS, LONG_MIGRATE_MS));
});

describe('dirty-rate', () => {
  it('page sampling agrees with the per-vCPU ring counts within ±25 % over the same period', async () => {
    const seed = testSeed(731);
    // 2 × 8 MiB/s of random writes over 64 MiB for 1 s dirties ~22 % of memory; 4096 sampled
    // pages put the sampling error near 3 % (one standard deviation).
    const r = await withWatchdog(seed, RATE_MS, 'dirty-rate ring + sampling', () =>
      measureDirtyRate(
        { modes: ['ring', 'sampling'], vcpus: 2, memoryBytes: 64 * MiB, dirtyRateMiBs: 8, periodMs: 1000, samplePagesPerGiB: 65536, seed },
        { spawn },
      ),
    );
    const c = `seed ${seed}: ${JSON.stringify(r)}`;
    expect(r.error, c).toBeNull();
    expect(r.ok, c).toBe(true);
    expect(r.ring!.pages, c).toBeGreaterThan(500);
    expect(r.ring!.perVcpuMiBs, c).toHaveLength(2);
    expect(r.sampling!.sampledPages, c).toBe(4096);
    const ratio = r.sampling!.dirtyRateMiBs / r.ring!.dirtyRateMiBs;
    expect(ratio, c).toBeGreaterThan(0.75);
    expect(ratio, c).toBeLessThan(1.25);
  }, timeoutAbove(RATE_MS));

  it('bitmap mode counts the pages a GET returns after the period', async () => {
    const seed = testSeed(732);
    const r = await withWatchdog(seed, RATE_MS, 'dirty-rate bitmap', () =>
      measureDirtyRate({ modes: ['bitmap'], vcpus: 2, memoryBytes: 32 * MiB, dirtyRateMiBs: 4, periodMs: 500, seed }, { spawn }),
    );
    const c = `seed ${seed}: ${JSON.stringify(r)}`;
    expect(r.ok, c).toBe(true);
    expect(r.bitmap!.pages, c).toBeGreaterThan(0);
    // Rewrites count once: never more pages than the guest wrote.
    expect(r.bitmap!.pages, c).toBeLessThanOrEqual(r.guestWrites + 64);
  }, timeoutAbove(RATE_MS));
});
