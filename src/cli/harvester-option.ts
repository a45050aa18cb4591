/** `--harvester FILE`: a user's harvester in the collector's place, for `run`, `stress` and `migrate`. */
import { ConfigError } from '../base/config-error.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import type { HarvesterDefinition } from '../harvester/contract.js';
import { loadHarvester } from '../harvester/load-harvester.js';
import { UserHarvesterCollector } from '../harvester/user-collector.js';

export const HARVESTER_USAGE = `  --harvester FILE        your own harvester (an ES module: .js, .mjs or .ts, see
                          docs/HARVESTER-API.md) instead of the built-in collector;
                          its log mode is the run's`;

export interface CliHarvester {
  readonly shown: string;
  readonly url: string;
  readonly definition: HarvesterDefinition;
  /** The collector of the last run made with it. */
  collector: UserHarvesterCollector | null;
}

/** Load `--harvester`; a --log that differs from the harvester's is bad input. */
export async function loadCliHarvester(file: string | undefined, log: string | undefined): Promise<CliHarvester | null> {
  if (file === undefined) return null;
  const { url, definition } = await loadHarvester(file);
  if (log !== undefined && log !== definition.log) {
    throw new ConfigError('--log', log, 'EINVAL', `harvester ${definition.name} (${file}) drives --log ${definition.log}`);
  }
  return { shown: file, url, definition, collector: null };
}

/** The run (or migration) hook that puts the harvester in the collector's place. */
export function harvesterHooks(h: CliHarvester): { createCollector: (vm: Vm, vcpus: number, slots: readonly Memslot[]) => UserHarvesterCollector } {
  return {
    createCollector: (vm, vcpus, slots) => {
      h.collector = new UserHarvesterCollector(h.definition, vm, vcpus, slots);
      return h.collector;
    },
  };
}

/** What the run saw the harvester do that the summary does not say. */
export function harvesterLines(h: CliHarvester): string[] {
  const c = h.collector;
  if (c === null) return [];
  const lines = [`harvester ${h.definition.name}: ${c.stats.collections} collections, ${c.stats.records} pages reported`];
  const skipped = c.kernelSkippedBatches();
  if (skipped > 0) lines.push(`harvester ${h.definition.name}: the kernel skipped ${skipped} reset batch(es) of ring entries naming no valid page`);
  if (c.user.ioctlErrors > 0) lines.push(`harvester ${h.definition.name}: ${c.user.ioctlErrors} ioctl(s) returned an errno (first: ${c.user.firstIoctlError})`);
  return lines;
}

/** The harvester's part of `run --json`. */
export function harvesterJson(h: CliHarvester): object {
  const c = h.collector;
  return {
    name: h.definition.name,
    file: h.shown,
    log: h.definition.log,
    collections: c?.stats.collections ?? 0,
    pagesReported: c?.stats.records ?? 0,
    ioctlErrors: c?.user.ioctlErrors ?? 0,
    firstIoctlError: c?.user.firstIoctlError ?? null,
    kernelSkippedBatches: c?.kernelSkippedBatches() ?? 0,
  };
}
