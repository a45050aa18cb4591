/**
 * Pre-copy live migration, userspace's side (what QEMU's migration thread does), against a VM
 * whose vCPU worker threads keep writing guest memory throughout:
 *
 *   start dirty logging on every memslot; mark every page to send; first sync;
 *   round 1 (bulk) .. n: send every page marked, at the link's bandwidth, while servicing the
 *     guest (ring-full stalls: harvest + reset, release; dirty-limit: measure and throttle);
 *     then sync (collect the dirty set: ring harvest + reset, legacy GET, or manual GET with a
 *     CLEAR just before each chunk is sent) and decide: converged when the pages left would go
 *     over the link within the maximum downtime, else another round, up to the round limit;
 *   stop-and-copy: kick and park every vCPU and device, sync once more (ring-with-bitmap's
 *     device bitmap last), send the rest, and compare destination and source byte for byte.
 *
 * The guest writes the current round number into each page it writes, so a mismatch says from
 * which round the missing write came. The parts and the steps are in precopy.ts, the sending in
 * page-pump.ts, the reports in migration-summary.ts. Platform-neutral: the caller supplies how
 * to spawn a worker (Node or browser); every wait is asynchronous and bounded.
 */
import { isKvmError } from '../../abi/errno.js';
import { now } from '../../base/clock.js';
import { describeFailure } from '../guest-fleet.js';
import { type MigrationConfig, validateMigrationConfig } from './migration-config.js';
import type { MigrationSummary } from './migration-report.js';
import { summarizeMigration } from './migration-summary.js';
import type { PassProgress } from './page-pump.js';
import { PrecopyMigration, type PrecopyHooks } from './precopy.js';

/** Where a round's pass stands: pages sent of those marked when it began. */
export type MigrationProgress = PassProgress;

export interface MigrationHooks extends PrecopyHooks {
  /** Once, with the validated configuration, before any thread starts. */
  readonly onStart?: (config: MigrationConfig) => void;
}

export async function runMigration(input: Partial<MigrationConfig>, hooks: MigrationHooks): Promise<MigrationSummary> {
  const config = validateMigrationConfig(input);
  hooks.onStart?.(config);
  const startedAt = now();
  const migration = new PrecopyMigration(config, hooks);
  let error: string | null = null;
  try {
    await migration.startGuest();
    migration.startLogging();
    const lastRound = await migration.iterate();
    if (!migration.interrupted) {
      await migration.stopAndCopy(lastRound + 1);
      // With every writer parked.
      migration.verify();
    }
  } catch (e) {
    error = isKvmError(e) ? e.message : describeFailure(e, migration.fleet);
  } finally {
    migration.sender.close();
    await migration.tracker.close();
    const err = await migration.fleet.shutdown();
    if (err !== null && error === null) error = err;
  }
  const statistics = migration.statistics();
  return summarizeMigration({ config, error, totalMs: now() - startedAt, ...statistics });
}
