/** `run()` and `migrate()`: the `dirtyring run` and `dirtyring migrate` commands as functions (Node). */
import { type IterationReport, type RunSummary, runDirtyLog } from '../harness/run.js';
import type { RunConfig } from '../harness/run-config.js';
import { ConfigError } from '../base/config-error.js';
import type { HarvesterReport } from '../harvester/user-collector.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import type { MigrationConfig } from '../userspace/migration/migration-config.js';
import type { MigrationSummary, RoundReport } from '../userspace/migration/migration-report.js';
import { runMigration } from '../userspace/migration/migration.js';
import { type HarvesterInput, HarvesterSlot, harvesterLog, resolveHarvester } from './harvester-input.js';

export interface RunOptions extends Partial<RunConfig> {
  /** Your harvester in the collector's place (its log mode is the run's). */
  readonly harvester?: HarvesterInput;
  readonly onIteration?: (report: IterationReport) => void;
}

export interface RunResult extends RunSummary {
  /** What the run saw your harvester do (null without one). */
  readonly harvester: HarvesterReport | null;
}

/**
 * One run: vCPU threads dirty memory, the collector (or your harvester) collects, the oracle
 * and the byte-exact copy check judge every iteration. Bad options throw a ConfigError naming
 * the option and the errno; what the run found is in the result (`ok`, `lostPages`, ...).
 */
export async function run(options: RunOptions = {}): Promise<RunResult> {
  const { harvester, onIteration, ...config } = options;
  // Your harvester is the reaper under test: the vCPUs stall on exit 31 until it collects.
  if (harvester !== undefined && config.selfReap === true) {
    throw new ConfigError('selfReap', 'true', 'EINVAL', 'the vCPU threads reap with the built-in collector; with a harvester, yours is the reaper');
  }
  const h = await resolveHarvester(harvester);
  const slot = h === null ? null : new HarvesterSlot(h.definition, h.url);
  const log = harvesterLog(h?.definition ?? null, config.log);
  const summary = await runDirtyLog(
    { ...config, ...(log !== undefined && { log }) },
    { spawn: spawnNodeVcpuWorker, ...(onIteration && { onIteration }), ...(slot?.hooks()) },
  );
  return { ...summary, harvester: slot?.collector?.report() ?? null };
}

export interface MigrateOptions extends Partial<MigrationConfig> {
  readonly harvester?: HarvesterInput;
  readonly onRound?: (report: RoundReport) => void;
}

export interface MigrateResult extends MigrationSummary {
  readonly harvester: HarvesterReport | null;
}

/** One pre-copy live migration, verified byte for byte; your harvester tracks the dirty pages when given. */
export async function migrate(options: MigrateOptions = {}): Promise<MigrateResult> {
  const { harvester, onRound, ...config } = options;
  const h = await resolveHarvester(harvester);
  const slot = h === null ? null : new HarvesterSlot(h.definition, h.url);
  const log = harvesterLog(h?.definition ?? null, config.log);
  const summary = await runMigration(
    { ...config, ...(log !== undefined && { log }) },
    { spawn: spawnNodeVcpuWorker, ...(onRound && { onRound }), ...(slot?.hooks()) },
  );
  return { ...summary, harvester: slot?.collector?.report() ?? null };
}
