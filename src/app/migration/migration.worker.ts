/**
 * The migration view's worker: a live migration's userspace (copy passes, syncs, the
 * stop-and-copy, the destination check) runs here, off the page's thread; the source's vCPUs
 * are nested module workers from workers/vcpu.worker.ts. One event per round goes back.
 */
import { expose } from 'comlink';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import type { MigrationConfig } from '../../userspace/migration/migration-config.js';
import { runMigration } from '../../userspace/migration/migration.js';
import type { MigrationSummary, RoundReport } from '../../userspace/migration/migration-report.js';

export const migrationWorkerApi = {
  async migrate(input: Partial<MigrationConfig>, onRound: (r: RoundReport) => void): Promise<MigrationSummary> {
    return runMigration(input, { spawn: spawnBrowserVcpuWorker, onRound: (r) => void onRound(r) });
  },
};

export type MigrationWorkerApi = typeof migrationWorkerApi;

expose(migrationWorkerApi);
