/** `--harvester FILE`: a user's harvester in the collector's place, for `run`, `stress` and `migrate`. */
import { ConfigError } from '../base/config-error.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import type { RingSpaceFactory } from '../userspace/guest-fleet.js';
import type { HarvesterDefinition } from '../harvester/contract.js';
import { loadHarvester } from '../harvester/load-harvester.js';
import { parseHarvesterThreads, withHarvesterThreads } from '../harvester/harvester-threads.js';
import { type UserCollector, createUserCollector } from '../harvester/create-user-collector.js';
import { spawnNodeHarvesterThread } from '../platform/node-harvester-host.js';

export const HARVESTER_USAGE = `  --harvester FILE        your own harvester (an ES module: .js, .mjs or .ts, see
                          docs/HARVESTER-API.md) instead of the built-in collector;
                          its log mode is the run's
  --harvester-threads N   run it on N threads of its own (1..8), or 0 on this thread
                          (default: as its module says)`;

export interface CliHarvester {
  readonly shown: string;
  readonly url: string;
  readonly definition: HarvesterDefinition;
  /** --harvester-threads (null: not given). */
  readonly threads: number | null;
  /** The collector of the last run made with it. */
  collector: UserCollector | null;
}

/** Load `--harvester` (on `threads`, `--harvester-threads`); a --log that differs from the harvester's is bad input. */
export async function loadCliHarvester(file: string | undefined, log: string | undefined, threadsArg?: string): Promise<CliHarvester | null> {
  const threads = parseHarvesterThreads('--harvester-threads', threadsArg, file !== undefined);
  if (file === undefined) return null;
  const loaded = await loadHarvester(file);
  const { url } = loaded;
  const definition = withHarvesterThreads(loaded.definition, threads);
  if (log !== undefined && log !== definition.log) {
    throw new ConfigError('--log', log, 'EINVAL', `harvester ${definition.name} (${file}) drives --log ${definition.log}`);
  }
  return { shown: file, url, definition, threads, collector: null };
}

/** The run (or migration) hook that puts the harvester in the collector's place. */
export function harvesterHooks(h: CliHarvester): { createCollector: (vm: Vm, vcpus: number, slots: readonly Memslot[]) => UserCollector; ringSpace?: RingSpaceFactory } {
  const ringSpace = h.definition.ringSpace;
  return {
    ...(ringSpace && { ringSpace }),
    createCollector: (vm, vcpus, slots) => {
      h.collector = createUserCollector(h.definition, { url: h.url, spawn: spawnNodeHarvesterThread }, vm, vcpus, slots);
      return h.collector;
    },
  };
}

/** What the run saw the harvester do that the summary does not say. */
export function harvesterLines(h: CliHarvester): string[] {
  const c = h.collector;
  if (c === null) return [];
  const r = c.report();
  const threads = h.definition.threads;
  const lines = [`harvester ${r.name}: ${r.collections} collections, ${r.pagesReported} pages reported${threads !== undefined ? ` by ${threads} thread(s) of its own` : ''}`];
  if (r.kernelSkippedBatches > 0) lines.push(`harvester ${r.name}: the kernel skipped ${r.kernelSkippedBatches} reset batch(es) of ring entries naming no valid page`);
  if (r.ioctlErrors > 0) lines.push(`harvester ${r.name}: ${r.ioctlErrors} ioctl(s) returned an errno (first: ${r.firstIoctlError})`);
  return lines;
}

/** A command's closing output: its summary lines, the harvester's, and `--json`'s line. */
export function printSummary(out: (line: string) => void, lines: readonly string[], summary: object, harvester: CliHarvester | null, json: boolean): void {
  for (const line of lines) out(line);
  if (harvester !== null) for (const line of harvesterLines(harvester)) out(line);
  if (json) process.stdout.write(`${JSON.stringify(harvester === null ? summary : { ...summary, harvester: harvesterJson(harvester) })}\n`);
}

/** The harvester's part of `--json`. */
export function harvesterJson(h: CliHarvester): object {
  return { file: h.shown, ...(h.collector?.report() ?? { name: h.definition.name, log: h.definition.log }) };
}

/** The log mode of a run whose collection is the user's harvester's (not the built-in's chunking). */
export function harvesterLogDescription(c: { readonly log: string; readonly ringEntries: number }): string {
  if (c.log === 'ring') return `${c.ringEntries}-entry dirty rings`;
  return c.log === 'bitmap' ? 'legacy KVM_GET_DIRTY_LOG' : 'manual protect (KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG)';
}
