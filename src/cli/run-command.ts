/** `dirtyring run`: one ring run with the oracle, progress per iteration, a summary. */
import { parseArgs } from 'node:util';
import { MUTANT_NAMES } from '../kernel/mutants.js';
import { type IterationReport, type RunSummary, runRing } from '../harness/ring-run.js';
import { ConfigError, type RunConfig, parseSize } from '../harness/run-config.js';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { formatBytes, formatCount, table } from './format.js';

export const RUN_USAGE = `usage: dirtyring run [options]

Run vCPU worker threads that dirty guest memory and publish dirty pages through KVM's
per-vCPU dirty rings; harvest, reset and verify with the dirty_log_test oracle.

  --vcpus N               vCPU worker threads (default 2)
  --memory SIZE           guest memory, e.g. 64MiB, 1GiB (default 64MiB)
  --memslots N            split memory into N memslots (default 1)
  --ring-entries N        entries per vCPU ring: a power of two, 256..65536 (default 4096)
  --iterations N          iterations of the oracle (default 8)
  --interval-ms N         guest run time per iteration (default 10)
  --harvest-interval-ms N periodic harvest while the guest runs (default 2)
  --workload KIND         random | sequential | hotset | selftest (default random)
  --burst-pages N         largest multi-page emulated instruction, 1..64 (default 8)
  --burst-percent N       share of burst instructions in percent (default 5)
  --path fault|emulated   hardware fault path (default) or log every store (emulator path)
  --mutant NAME[,NAME]    enable known protocol bugs (the oracle must catch them)
  --seed N                workload seed (default: random, printed)
  --json                  print one JSON summary as the last line of stdout
  -h, --help              this help

Exit status: 0 no lost page, 1 the oracle found a violation (or the run failed),
2 bad input.`;

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      vcpus: { type: 'string' },
      memory: { type: 'string' },
      memslots: { type: 'string' },
      'ring-entries': { type: 'string' },
      iterations: { type: 'string' },
      'interval-ms': { type: 'string' },
      'harvest-interval-ms': { type: 'string' },
      workload: { type: 'string' },
      'burst-pages': { type: 'string' },
      'burst-percent': { type: 'string' },
      path: { type: 'string' },
      mutant: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(RUN_USAGE);
    return 0;
  }
  const json = values.json === true;
  const num = (param: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected an integer');
    return Number(v);
  };
  let mutants = 0;
  if (values.mutant) {
    for (const name of values.mutant.split(',').map((s) => s.trim()).filter(Boolean)) {
      const bit = MUTANT_NAMES[name];
      if (bit === undefined) {
        throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')})`);
      }
      mutants |= bit;
    }
  }
  if (values.path !== undefined && values.path !== 'fault' && values.path !== 'emulated') {
    throw new ConfigError('--path', values.path, 'EINVAL', 'path must be fault or emulated');
  }
  const input: Partial<RunConfig> = {
    vcpus: num('vcpus', values.vcpus),
    memoryBytes: values.memory === undefined ? undefined : parseSize('--memory', values.memory),
    memslots: num('memslots', values.memslots),
    ringEntries: num('ring-entries', values['ring-entries']),
    iterations: num('iterations', values.iterations),
    intervalMs: num('interval-ms', values['interval-ms']),
    harvestIntervalMs: num('harvest-interval-ms', values['harvest-interval-ms']),
    workload: values.workload as RunConfig['workload'] | undefined,
    burstPages: num('burst-pages', values['burst-pages']),
    burstPercent: num('burst-percent', values['burst-percent']),
    seed: num('seed', values.seed),
    mutants,
    emulateAllStores: values.path === 'emulated',
  };
  // Progress goes to stderr with --json so that stdout holds only the JSON line.
  const out = json ? (s: string) => process.stderr.write(`${s}\n`) : (s: string) => process.stdout.write(`${s}\n`);
  const { validateRunConfig } = await import('../harness/run-config.js');
  const config = validateRunConfig(input);
  out(
    `dirtyring run: ${config.vcpus} vCPUs, ${formatBytes(config.memoryBytes)} in ${config.memslots} memslot(s), ` +
      `${config.ringEntries}-entry rings, ${config.workload} workload, ${config.iterations} iterations, seed ${config.seed}`,
  );
  const summary = await runRing(config, {
    spawn: spawnNodeVcpuWorker,
    onIteration: (r: IterationReport) => out(iterationLine(r)),
  });
  for (const line of summaryLines(summary)) out(line);
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.ok ? 0 : 1;
}

function iterationLine(r: IterationReport): string {
  const verdict = r.lostPages + r.wrongValues === 0 ? 'ok' : `LOST ${r.lostPages} wrong ${r.wrongValues}`;
  return (
    `  iteration ${String(r.iteration).padStart(3)}: ${formatCount(r.guestWrites).padStart(7)} writes, ` +
    `${formatCount(r.entriesHarvested).padStart(6)} entries harvested, ${String(r.ringFullExits).padStart(4)} ring-full exits, ` +
    `${formatCount(r.pagesChanged).padStart(6)} pages changed, ${String(r.falsePositives).padStart(4)} false positives  ${verdict}`
  );
}

export function summaryLines(s: RunSummary): string[] {
  const rows: [string, string][] = [
    ['guest writes (instructions)', formatCount(s.guestWrites)],
    ['guest stores (pages)', formatCount(s.guestStores)],
    ['write faults', formatCount(s.faults)],
    ['ring pushes', formatCount(s.pushes)],
    ['entries harvested', formatCount(s.pagesHarvested)],
    ['ring-full exits', formatCount(s.ringFullExits)],
    ['vCPU stall time (total / max)', `${s.stallMs.toFixed(1)} ms / ${s.maxStallMs.toFixed(2)} ms`],
    ['reset calls / entries reset', `${formatCount(s.resetCalls)} / ${formatCount(s.entriesReset)}`],
    ['reset count mismatches', String(s.resetMismatches)],
    ['TLB flushes', formatCount(s.tlbFlushes)],
    ['mmu_lock hold (max / total)', `${s.mmuLockMaxHoldUs.toFixed(1)} us / ${(s.mmuLockTotalHoldUs / 1000).toFixed(2)} ms`],
    ['duplicate entries', formatCount(s.duplicates)],
    ['false positives', formatCount(s.falsePositives)],
    ['lost pages', String(s.lostPages)],
    ['wrong values', String(s.wrongValues)],
    ['elapsed', `${(s.elapsedMs / 1000).toFixed(2)} s`],
  ];
  const lines = ['', table(['summary', ''], rows)];
  if (s.mutants.length > 0) lines.push(`mutants enabled: ${s.mutants.join(', ')}`);
  for (const p of s.lost.slice(0, 10)) {
    lines.push(
      `LOST PAGE: slot ${p.slot} offset ${p.offset} (gfn 0x${p.gfn.toString(16)}), last written by vCPU ${p.vcpu} ` +
        `with value ${p.value}, iteration ${p.iteration}, seed ${p.seed} (${p.reason})`,
    );
  }
  if (s.error) lines.push(`run failed: ${s.error}`);
  lines.push(
    s.ok
      ? `OK: ${s.iterations} iterations, 0 lost pages (seed ${s.seed})`
      : `FAILED: ${s.lostPages} lost pages, ${s.wrongValues} wrong values, ${s.resetMismatches} reset mismatches, ` +
          `${s.badEntries} bad entries, ${s.kernelWarnings} kernel warnings, ${s.kernelBugs} kernel bugs — reproduce with --seed ${s.seed}`,
  );
  return lines;
}
