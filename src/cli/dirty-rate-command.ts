/** `dirtyring dirty-rate`: measure a running guest's dirty rate, like QEMU's calc-dirty-rate. */
import { parseArgs } from 'node:util';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import {
  DIRTY_RATE_DEFAULTS,
  type DirtyRateConfig,
  type DirtyRateMode,
  type DirtyRateResult,
  MAX_PERIOD_MS,
  MIN_PERIOD_MS,
  measureDirtyRate,
} from '../userspace/migration/dirty-rate.js';
import { PACE_OPTIONS, VM_OPTIONS, intOption, paceInput, vmInput } from './cli-args.js';
import { PAGE_SIZE } from '../abi/constants.js';
import { MS_PER_S, MiB, formatBytes, formatCount, humanOutput, table } from './format.js';

const D = DIRTY_RATE_DEFAULTS;

export const DIRTY_RATE_USAGE = `usage: dirtyring dirty-rate [options]

Run a guest and measure how fast it dirties memory over one period, the way QEMU's
calc-dirty-rate does.

  --mode MODE[,MODE]        ring (per-vCPU rates from the dirty rings) | bitmap (GET at the start
                            and the end) | sampling (hash a page sample at the start and the end;
                            default); sampling can be combined with ring or bitmap
  --period-ms N             measurement period, ${MIN_PERIOD_MS}..${MAX_PERIOD_MS} ms (default ${D.periodMs})
  --vcpus N                 vCPU threads (default ${D.vcpus})
  --memory SIZE             guest memory (default ${formatBytes(D.memoryBytes)})
  --ring-entries N          --mode ring: entries per vCPU ring (default ${D.ringEntries})
  --dirty-rate-mibs N       pace each vCPU to N MiB/s of page writes; 0 = unpaced (default ${D.dirtyRateMiBs})
  --working-set SIZE        the guest writes only the first SIZE of memory; 0 = all (default)
  --workload KIND           random | sequential | hotset | selftest (default ${D.workload})
  --sample-pages-per-gib N  sampling density, 128..1048576 (default ${D.samplePagesPerGiB}, as QEMU)
  --warmup-ms N             guest run time before the period (default ${D.warmupMs})
  --seed N                  workload and sample seed (default: random)
  --json                    print one JSON result as the last line of stdout
  -h, --help                this help

Exit status: 0 measured, 1 the measurement failed, 2 bad input.`;

export async function dirtyRateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...VM_OPTIONS,
      ...PACE_OPTIONS,
      mode: { type: 'string' },
      'period-ms': { type: 'string' },
      'sample-pages-per-gib': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(DIRTY_RATE_USAGE);
    return 0;
  }
  const input: Partial<DirtyRateConfig> = {
    ...vmInput(values),
    ...paceInput(values),
    // Split only: validateDirtyRateConfig names the bad mode.
    modes: values.mode?.split(',').map((m) => m.trim()) as DirtyRateMode[] | undefined,
    periodMs: intOption('period-ms', values['period-ms']),
    samplePagesPerGiB: intOption('sample-pages-per-gib', values['sample-pages-per-gib']),
  };
  const json = values.json === true;
  const out = humanOutput(json);
  const result = await measureDirtyRate(input, {
    spawn: spawnNodeVcpuWorker,
    onStart: (c) =>
      out(
        `dirtyring dirty-rate: ${c.modes.join(' + ')} over ${c.periodMs} ms; ${c.vcpus} vCPUs, ${formatBytes(c.memoryBytes)}, ` +
          `${c.workload} workload${c.dirtyRateMiBs > 0 ? ` paced to ${c.dirtyRateMiBs} MiB/s per vCPU` : ' (unpaced)'}, seed ${c.seed}`,
      ),
  });
  for (const line of resultLines(result)) out(line);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

function resultLines(r: DirtyRateResult): string[] {
  const rows: string[][] = [];
  if (r.ring) rows.push(['ring', r.ring.dirtyRateMiBs.toFixed(2), formatCount(r.ring.pages), `per vCPU: ${r.ring.perVcpuMiBs.map((x) => x.toFixed(2)).join(' ')}`]);
  if (r.bitmap) rows.push(['bitmap', r.bitmap.dirtyRateMiBs.toFixed(2), formatCount(r.bitmap.pages), '']);
  if (r.sampling) {
    rows.push([
      'sampling',
      r.sampling.dirtyRateMiBs.toFixed(2),
      `${formatCount(r.sampling.changedPages)}/${formatCount(r.sampling.sampledPages)}`,
      `${r.sampling.samplePagesPerGiB} pages per GiB sampled`,
    ]);
  }
  const lines = [table(['mode', 'MiB/s', 'pages', ''], rows)];
  lines.push(
    `guest: ${formatCount(r.guestWrites)} page writes in ${r.periodMs.toFixed(0)} ms ` +
      `(${((r.guestWrites * PAGE_SIZE) / MiB / (r.periodMs / MS_PER_S)).toFixed(2)} MiB/s${r.guestTargetMiBs > 0 ? `, paced to ${r.guestTargetMiBs} MiB/s` : ''}); ` +
      'a page rewritten before its record is reset counts once',
  );
  if (r.error) lines.push(`measurement failed: ${r.error}`);
  return lines;
}
