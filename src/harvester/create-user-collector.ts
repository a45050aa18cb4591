/** A user's harvester as a collector: on the calling thread, or on threads of its own (`threads`). */
import { ConfigError } from '../base/config-error.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import type { HarvesterDefinition } from './contract.js';
import type { SpawnHarvesterThread } from './thread-layout.js';
import { ThreadedHarvesterCollector } from './threaded-collector.js';
import { UserHarvesterCollector } from './user-collector.js';

export type UserCollector = UserHarvesterCollector | ThreadedHarvesterCollector;

/** Where a threaded harvester's threads come from: its module (they load it) and a spawner. */
export interface HarvesterThreadSource {
  readonly url: string | null;
  readonly spawn: SpawnHarvesterThread | null;
  /** The run's coverage buffer: the threads record into its userspace block (0). */
  readonly coverage?: SharedArrayBuffer;
}

export function createUserCollector(def: HarvesterDefinition, source: HarvesterThreadSource, vm: Vm, vcpus: number, slots: readonly Memslot[], ringStart = 0): UserCollector {
  if (def.threads === undefined) return new UserHarvesterCollector(def, vm, vcpus, slots, { ringStart });
  if (source.url === null) throw new ConfigError('harvester', def.name, 'EINVAL', `a harvester with threads of its own is given as its module (a path or a file: URL): each thread loads it`);
  if (source.spawn === null) throw new ConfigError('harvester', def.name, 'EINVAL', 'harvester threads cannot be started here');
  return new ThreadedHarvesterCollector(def, source.url, vm, vcpus, slots, source.spawn, ringStart, source.coverage ?? null);
}
