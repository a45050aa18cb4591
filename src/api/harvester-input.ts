/** A harvester as the API takes it: a module (path or URL) or, in-process only, a definition. */
import { ConfigError } from '../base/config-error.js';
import { type HarvesterDefinition, isHarvesterDefinition } from '../harvester/contract.js';
import { loadHarvester } from '../harvester/load-harvester.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import type { RingSpaceFactory } from '../userspace/guest-fleet.js';
import { type UserCollector, createUserCollector } from '../harvester/create-user-collector.js';
import { spawnNodeHarvesterThread } from '../platform/node-harvester-host.js';

export type HarvesterInput = string | URL | HarvesterDefinition;

/** The definition `h` names (loading its module) and the module's URL (null for a definition given in-process). */
export async function resolveHarvester(h: HarvesterInput | undefined): Promise<{ definition: HarvesterDefinition; url: string | null } | null> {
  if (h === undefined) return null;
  if (isHarvesterDefinition(h)) return { definition: h, url: null };
  if (typeof h !== 'string' && !(h instanceof URL)) {
    throw new ConfigError('harvester', String(h), 'EINVAL', 'must be a module path, a file: URL, or a defineHarvester() value');
  }
  return loadHarvester(h);
}

/** A harvester's collector, kept for its report once the run is over. */
export class HarvesterSlot {
  collector: UserCollector | null = null;

  constructor(
    readonly definition: HarvesterDefinition,
    private readonly url: string | null,
  ) {
    // Checked before the run starts: each of its threads loads the module itself.
    if (definition.threads !== undefined && url === null) {
      throw new ConfigError('harvester', definition.name, 'EINVAL', 'a harvester with threads of its own is given as its module (a path or a file: URL): each thread loads it');
    }
  }

  readonly createCollector = (vm: Vm, vcpus: number, slots: readonly Memslot[]): UserCollector => {
    this.collector = createUserCollector(this.definition, { url: this.url, spawn: spawnNodeHarvesterThread }, vm, vcpus, slots);
    return this.collector;
  };

  /** The run's (or migration's) hooks: the collector, and where a WebAssembly harvester's rings go. */
  hooks(): { createCollector: HarvesterSlot['createCollector']; ringSpace?: RingSpaceFactory } {
    const ringSpace = this.definition.ringSpace;
    return { createCollector: this.createCollector, ...(ringSpace && { ringSpace }) };
  }
}

/** `log` as the run will use it: the harvester's, and a different one asked for is bad input. */
export function harvesterLog<L extends string>(def: HarvesterDefinition | null, log: L | undefined): L | undefined {
  if (def === null) return log;
  if (log !== undefined && log !== def.log) throw new ConfigError('log', log, 'EINVAL', `harvester ${def.name} drives log ${def.log}`);
  return def.log as L;
}
