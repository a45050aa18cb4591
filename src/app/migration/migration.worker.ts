/**
 * The migration view's worker: a live migration's userspace (copy passes, syncs, the
 * stop-and-copy, the destination check) runs here, off the page's thread, with the built-in
 * collector or a user's harvester tracking the dirty pages (as `dirtyring migrate --harvester`;
 * a picked module is compiled and checked here); the source's vCPUs
 * are nested module workers from workers/vcpu.worker.ts. One event per round goes back, and
 * once, before the guest starts, the source VM's and the dirty-limit's shared buffers, which
 * the page reads for its thread lanes.
 */
import { expose } from 'comlink';
import { ConfigError } from '../../base/config-error.js';
import type { HarvesterDefinition } from '../../harvester/contract.js';
import { type HarvesterThreadSource, type UserCollector, createUserCollector } from '../../harvester/create-user-collector.js';
import type { HarvesterReport } from '../../harvester/user-collector.js';
import type { VmBuffers } from '../../kernel/vm.js';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import type { MigrationConfig } from '../../userspace/migration/migration-config.js';
import { runMigration } from '../../userspace/migration/migration.js';
import type { MigrationSummary, RoundReport } from '../../userspace/migration/migration-report.js';
import type { MigrationHooks } from '../../userspace/migration/migration.js';
import { appHarvesterThreadSpawner } from '../harvester-thread-host.js';
import { BUILTIN_COLLECTORS, appHarvesterUrlOf, definitionOf } from '../user-harvesters.js';
import type { WasmFile } from '../wasm-choices.js';

/** What the page needs to draw the source's vCPU lanes. */
export interface MigrationGuest {
  readonly vm: VmBuffers;
  readonly vcpus: number;
  /** Each vCPU's dirty-limit block (VcpuThrottleLayout); null without a dirty limit. */
  readonly throttles: readonly SharedArrayBuffer[] | null;
}

/** The migration's summary, and the user harvester's report with its threads of its own (0: none; null: the built-in collector). */
export interface MigrationOutcome extends MigrationSummary {
  readonly harvester: (HarvesterReport & { readonly threads: number }) | null;
}

/**
 * The collector hooks of a user harvester, and its collector once the migration built it: on
 * this thread, or (`threads`, DIRTYRING_THREADS) on harvester-thread workers of its own.
 */
class HarvesterHooks {
  collector: UserCollector | null = null;
  readonly definition: HarvesterDefinition;
  private readonly source: HarvesterThreadSource;
  constructor(id: string, wasm: WasmFile | null) {
    this.definition = definitionOf(id, wasm);
    this.source = { url: appHarvesterUrlOf(id, this.definition, wasm), spawn: appHarvesterThreadSpawner(wasm) };
  }
  hooks(): Pick<MigrationHooks, 'createCollector' | 'ringSpace'> {
    const ringSpace = this.definition.ringSpace;
    return { createCollector: (vm, vcpus, slots) => (this.collector = createUserCollector(this.definition, this.source, vm, vcpus, slots)), ...(ringSpace && { ringSpace }) };
  }
}

export const migrationWorkerApi = {
  /** `harvester`: the choice id (user-harvesters.ts; 'builtin': the log mode's collector); `wasm`: the picked module. */
  async migrate(input: Partial<MigrationConfig>, onRound: (r: RoundReport) => void, onGuest: (g: MigrationGuest) => void, harvester = BUILTIN_COLLECTORS, wasm: WasmFile | null = null): Promise<MigrationOutcome> {
    const user = harvester === BUILTIN_COLLECTORS ? null : new HarvesterHooks(harvester, wasm);
    const log = user?.definition.log;
    // As `migrate --harvester`: the harvester drives its own log mode.
    if (log !== undefined && input.log !== undefined && input.log !== log) throw new ConfigError('log', input.log, 'EINVAL', `harvester ${user!.definition.name} drives log ${log}`);
    const summary = await runMigration(
      { ...input, ...(log !== undefined && { log }) },
      {
        spawn: spawnBrowserVcpuWorker,
        onRound: (r) => void onRound(r),
        onGuestBuilt: (vm, throttles) => void onGuest({ vm: vm.buffers(), vcpus: vm.buffers().vcpus.length, throttles }),
        ...user?.hooks(),
      },
    );
    const report = user?.collector?.report();
    return { ...summary, harvester: report === undefined ? null : { ...report, threads: user!.definition.threads ?? 0 } };
  },
};

export type MigrationWorkerApi = typeof migrationWorkerApi;

expose(migrationWorkerApi);
