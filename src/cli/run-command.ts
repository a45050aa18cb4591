/** `dirtyring run`: one run of the oracle over any logging interface (ring, bitmap, clear), progress per iteration, a summary. */
import { parseArgs } from 'node:util';
import { type IterationReport, type RunSummary, runDirtyLog } from '../harness/run.js';
import { ConfigError } from '../base/config-error.js';
import { type RunConfig, validateRunConfig } from '../harness/run-config.js';
import { PAGE_SIZE } from '../abi/constants.js';
import { checkGuestMemory } from './memory-budget.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { GUEST_OPTIONS, guestInput, intOption } from './cli-args.js';
import { withInterrupt } from './interrupt.js';
import { formatBytes, formatCount, humanOutput, logDescription, msAsSeconds, table, usAsMs, writerName } from './format.js';
import { TRACK_USAGE, pageTrackProblems, pageTrackRows, parseTrackPages } from './page-track-format.js';
import { type CliHarvester, HARVESTER_USAGE, harvesterHooks, printSummary, harvesterLogDescription, loadCliHarvester } from './harvester-option.js';

export const RUN_USAGE = `usage: dirtyring run [options]

Run vCPU worker threads that dirty guest memory and publish dirty pages through one of KVM's
logging interfaces; collect, copy and verify with the dirty_log_test oracle.

  --log MODE              ring (per-vCPU dirty rings, default) | bitmap (legacy
                          KVM_GET_DIRTY_LOG) | clear (manual protect: GET, then
                          KVM_CLEAR_DIRTY_LOG in chunks just before copying)
  --clear-chunk-pages N   --log clear: pages per CLEAR, a multiple of 64 (default 1024)
  --initially-set         --log clear: KVM_DIRTY_LOG_INITIALLY_SET
  --device-writers N      DMA device threads writing with no running vCPU (default 0)
  --device-interval-us N  pause between two device writes (default 100)
  --ring-with-bitmap on|off
                          --log ring: log device writes in a bitmap read last (cap 225,
                          default on with devices); off loses them, as the kernel warns
  --self-reap             --log ring (the default design there): a vCPU thread that exits 31
                          harvests its own ring and resets (QEMU's reaction); userspace's
                          collections copy what it reaped
  --no-self-reap          --log ring: the hand-off design instead: the vCPU stalls on exit 31
                          until userspace has harvested and reset (always the design with
                          --harvester: your harvester is the reaper under test)
  --vcpus N               vCPU worker threads (default 2)
  --memory SIZE           guest memory, e.g. 64MiB, 1GiB (default 64MiB)
  --memslots N            split memory into N memslots (default 1)
  --smm-pages N           add N pages of SMRAM in address space 1 (the VM then has SMM):
                          the vCPUs enter SMM, store to SMRAM and leave it in a share of
                          their writes (default 0, no SMM)
  --ring-entries N        entries per vCPU ring: a power of two, 256..65536 (default 4096)
  --iterations N          iterations of the oracle (default 8)
  --interval-ms N         guest run time per iteration (default 10)
  --harvest-interval-ms N periodic harvest while the guest runs (default 2)
  --workload KIND         random | sequential | hotset | selftest (default random)
  --burst-pages N         largest multi-page emulated instruction, 1..64 (default 8)
  --burst-percent N       share of burst instructions in percent (default 5)
  --writes-per-iteration N
                          each vCPU executes exactly N instructions per iteration, then
                          halts: the same seed then does the same writes in every mode
  --path fault|emulated   hardware fault path (default) or log every store (emulator path)
${TRACK_USAGE}
${HARVESTER_USAGE}
  --mutant NAME[,NAME]    enable known protocol bugs (the oracle must catch them)
  --seed N                workload seed (default: random, printed)
  --json                  print one JSON summary as the last line of stdout
  -h, --help              this help

Exit status: 0 no lost page, 1 the oracle found a violation (or the run failed),
2 bad input.`;

/** Lost pages and copy mismatches printed (the JSON summary has the run's details). */
const LOST_PAGES_PRINTED = 10;
const MISMATCHES_PRINTED = 5;

const RUN_OPTIONS = {
  ...GUEST_OPTIONS,
  'self-reap': { type: 'boolean' },
  'no-self-reap': { type: 'boolean' },
  iterations: { type: 'string' },
  'interval-ms': { type: 'string' },
  'harvest-interval-ms': { type: 'string' },
  'writes-per-iteration': { type: 'string' },
  path: { type: 'string' },
  'track-pages': { type: 'string' },
  'track-ring-entries': { type: 'string' },
  'smm-pages': { type: 'string' },
  harvester: { type: 'string' },
  'harvester-threads': { type: 'string' },
} as const;

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: RUN_OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    console.log(RUN_USAGE);
    return 0;
  }
  const json = values.json === true;
  if (values.path !== undefined && values.path !== 'fault' && values.path !== 'emulated') {
    throw new ConfigError('--path', values.path, 'EINVAL', 'path must be fault or emulated');
  }
  const harvester: CliHarvester | null = await loadCliHarvester(values.harvester, values.log, values['harvester-threads']);
  const input: Partial<RunConfig> = {
    ...guestInput(values),
    ...(harvester !== null && { log: harvester.definition.log }),
    selfReap: selfReapOption(values['self-reap'], values['no-self-reap'], harvester),
    iterations: intOption('iterations', values.iterations),
    intervalMs: intOption('interval-ms', values['interval-ms']),
    harvestIntervalMs: intOption('harvest-interval-ms', values['harvest-interval-ms']),
    writesPerIteration: intOption('writes-per-iteration', values['writes-per-iteration']),
    emulateAllStores: values.path === 'emulated',
    smmPages: intOption('smm-pages', values['smm-pages']),
    ...parseTrackPages(values['track-pages']),
    trackRingEntries: intOption('track-ring-entries', values['track-ring-entries']),
  };
  // Validated here first (runDirtyLog validates again) to refuse a guest that cannot fit before it is built.
  const checked = validateRunConfig(input);
  checkGuestMemory('run', checked.memoryBytes + checked.smmPages * PAGE_SIZE, values.memory);
  const out = humanOutput(json);
  const describe = (config: RunConfig): void => {
    out(
      `dirtyring run: ${config.vcpus} vCPUs${config.deviceWriters > 0 ? ` + ${config.deviceWriters} DMA device(s)` : ''}, ` +
        `${formatBytes(config.memoryBytes)} in ${config.memslots} memslot(s)${config.smmPages > 0 ? ` + ${config.smmPages} pages of SMRAM` : ''}, ` +
        `${harvester !== null ? harvesterLogDescription(config) : logDescription(config)}${config.log === 'ring' ? (config.selfReap ? ', self-reap on exit 31' : ', hand-off on exit 31') : ''}, ${config.workload} workload, ` +
        `${config.iterations} iterations, seed ${config.seed}` +
        (harvester !== null ? `, harvester ${harvester.definition.name} (${harvester.shown})` : ''),
    );
  };
  return withInterrupt('iteration', async (interrupt) => {
    const summary = await runDirtyLog(input, {
      spawn: spawnNodeVcpuWorker,
      onStart: describe,
      onIteration: (r: IterationReport) => out(iterationLine(r)),
      shouldStop: () => interrupt.requested,
      ...(harvester !== null && harvesterHooks(harvester)),
    });
    printSummary(out, summaryLines(summary), summary, harvester, json);
    if (interrupt.requested) return interrupt.exitStatus();
    return summary.ok ? 0 : 1;
  });
}

/** --self-reap / --no-self-reap; unsaid: the run's default (on with --log ring), off with --harvester. */
function selfReapOption(on: boolean | undefined, off: boolean | undefined, harvester: CliHarvester | null): boolean | undefined {
  if (on === true && off === true) throw new ConfigError('--no-self-reap', 'on', 'EINVAL', 'contradicts --self-reap');
  if (harvester !== null && on === true) {
    throw new ConfigError('--self-reap', 'on', 'EINVAL', 'the vCPU threads reap with the built-in collector; with --harvester your harvester is the reaper');
  }
  if (harvester !== null || off === true) return false;
  return on === true ? true : undefined;
}

function iterationLine(r: IterationReport): string {
  const bad = r.lostPages + r.wrongValues + r.copyMismatches + r.trackMismatches;
  const verdict =
    bad === 0
      ? 'ok'
      : `LOST ${r.lostPages}, wrong ${r.wrongValues}, copy mismatches ${r.copyMismatches}` +
        (r.trackMismatches > 0 ? `, page-track mismatches ${r.trackMismatches}` : '');
  return (
    `  iteration ${String(r.iteration).padStart(3)}: ${formatCount(r.guestWrites).padStart(7)} writes` +
    `${r.deviceWrites > 0 ? ` + ${formatCount(r.deviceWrites)} DMA` : ''}, ` +
    `${formatCount(r.recordsCollected).padStart(6)} records, ${String(r.ringFullExits).padStart(4)} ring-full exits, ` +
    `${formatCount(r.pagesCopied).padStart(6)} pages copied, ${String(r.pagesResent).padStart(5)} resent  ${verdict}`
  );
}

export function summaryLines(s: RunSummary): string[] {
  const hold = (h: { mean: number; max: number; total: number }): string =>
    `${h.mean.toFixed(1)} us / ${h.max.toFixed(1)} us / ${usAsMs(h.total, 2)} ms`;
  const rows: [string, string][] = [
    ['log mode', s.log],
    ['guest writes (instructions)', formatCount(s.guestWrites)],
    ['guest stores (pages)', formatCount(s.guestStores)],
    ['write faults', formatCount(s.faults)],
    [s.log === 'ring' ? 'ring pushes' : 'bitmap bits set', formatCount(s.pushes)],
    [s.log === 'ring' ? 'entries harvested' : 'dirty bits collected', formatCount(s.pagesHarvested)],
  ];
  if (s.log === 'ring') {
    rows.push(
      ['ring-full exits', formatCount(s.ringFullExits)],
      ['vCPU stall time (total / max)', `${s.stallMs.toFixed(1)} ms / ${s.maxStallMs.toFixed(2)} ms`],
      ['reset calls / entries reset', `${formatCount(s.resetCalls)} / ${formatCount(s.entriesReset)}`],
      ['reset count mismatches', String(s.resetMismatches)],
      ['mmu_lock hold per reset (mean / max / total)', hold(s.mmuLockHoldUs.reset)],
    );
  } else {
    rows.push(['GET calls / CLEAR calls', `${formatCount(s.getCalls)} / ${formatCount(s.clearCalls)}`]);
    rows.push(['mmu_lock hold per GET (mean / max / total)', hold(s.mmuLockHoldUs.get)]);
    if (s.log === 'clear') rows.push(['mmu_lock hold per CLEAR (mean / max / total)', hold(s.mmuLockHoldUs.clear)]);
  }
  if (s.deviceWriters > 0) {
    rows.push(['DMA writes (lost by the kernel)', `${formatCount(s.deviceWrites)} (${formatCount(s.deviceWritesLost)})`]);
  }
  rows.push(
    ['mmu_lock hold, all (max / total)', `${s.mmuLockMaxHoldUs.toFixed(1)} us / ${usAsMs(s.mmuLockTotalHoldUs, 2)} ms`],
    ['TLB flushes', formatCount(s.tlbFlushes)],
    ['pages copied', formatCount(s.pagesCopied)],
    ['false positives (pages resent)', `${formatCount(s.falsePositives)} (${(s.falsePositiveRate * 100).toFixed(2)} % of copies)`],
    ['duplicate records', formatCount(s.duplicates)],
    ['lost pages', String(s.lostPages)],
    ['wrong values', String(s.wrongValues)],
    ['copy mismatches', String(s.copyMismatches)],
    ...pageTrackRows(s.pageTrack),
    ['elapsed', `${msAsSeconds(s.elapsedMs, 2)} s`],
  );
  const lines = ['', table(['summary', ''], rows)];
  if (s.mutants.length > 0) lines.push(`mutants enabled: ${s.mutants.join(', ')}`);
  for (const p of s.lost.slice(0, LOST_PAGES_PRINTED)) {
    lines.push(
      `LOST PAGE: slot ${p.slot} offset ${p.offset} (gfn 0x${p.gfn.toString(16)}), last written by ${writerName(p.vcpu)} ` +
        `with value ${p.value}, iteration ${p.iteration}, seed ${p.seed} (${p.reason})`,
    );
  }
  for (const m of s.mismatches.slice(0, MISMATCHES_PRINTED)) {
    lines.push(
      `COPY MISMATCH: slot ${m.slot} offset ${m.offset} (gfn 0x${m.gfn.toString(16)}): the destination misses a write ` +
        `by ${writerName(m.writer)}, seed ${s.seed}`,
    );
  }
  lines.push(...pageTrackProblems(s.pageTrack));
  if (s.error) lines.push(`run failed: ${s.error}`);
  if (s.interrupted) {
    lines.push(
      `INTERRUPTED after ${s.iterations} iteration(s): partial results, ${s.lostPages} lost pages, ${s.wrongValues} wrong values, ${s.copyMismatches} copy mismatches in those (seed ${s.seed})`,
    );
    return lines;
  }
  lines.push(
    s.ok
      ? `OK: ${s.iterations} iterations, 0 lost pages (seed ${s.seed})`
      : `FAILED: ${s.lostPages} lost pages, ${s.wrongValues} wrong values, ${s.copyMismatches} copy mismatches, ` +
          `${s.resetMismatches} reset mismatches, ` +
          `${s.badEntries} bad entries, ${s.kernelWarnings} kernel warnings, ${s.kernelBugs} kernel bugs — reproduce with --seed ${s.seed}`,
  );
  return lines;
}
