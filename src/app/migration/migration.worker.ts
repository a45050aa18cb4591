/**
 * The migration view's worker: a live migration's userspace (copy passes, syncs, the
 * stop-and-copy, the destination check) runs here, off the page's thread; the source's vCPUs
 * are nested module workers from workers/vcpu.worker.ts. One event per round goes back, and
 * once, before the guest starts, the source VM's and the dirty-limit's shared buffers, which
 * the page reads for its thread lanes.
 */
import { expose } from 'comlink';
import type { VmBuffers } from '../../kernel/vm.js';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import type { MigrationConfig } from '../../userspace/migration/migration-config.js';
import { runMigration } from '../../userspace/migration/migration.js';
import type { MigrationSummary, RoundReport } from '../../userspace/migration/migration-report.js';

/** What the page needs to draw the source's vCPU lanes. */
export interface MigrationGuest {
  readonly vm: VmBuffers;
  readonly vcpus: number;
  /** Each vCPU's dirty-limit block (VcpuThrottleLayout); null without a dirty limit. */
  readonly throttles: readonly SharedArrayBuffer[] | null;
}

export const migrationWorkerApi = {
  async migrate(input: Partial<MigrationConfig>, onRound: (r: RoundReport) => void, onGuest: (g: MigrationGuest) => void): Promise<MigrationSummary> {
    return runMigration(input, {
      spawn: spawnBrowserVcpuWorker,
      onRound: (r) => void onRound(r),
      onGuestBuilt: (vm, throttles) => void onGuest({ vm: vm.buffers(), vcpus: vm.buffers().vcpus.length, throttles }),
    });
  },
};

export type MigrationWorkerApi = typeof migrationWorkerApi;

expose(migrationWorkerApi);
