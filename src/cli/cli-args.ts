/**
 * Argument handling shared by the commands that run a guest: the options that describe the
 * guest and its VM (one declaration, one parse), and integers, sizes, mutants, on/off.
 */
import { ConfigError, parseSize } from '../harness/run-config.js';
import type { WorkloadKind } from '../guest/workloads.js';
import { MUTANT_NAMES } from '../kernel/mutants.js';
import type { LogMode } from '../userspace/log-collectors.js';

/** node:util parseArgs specs of the options `run` and `migrate` share. */
export const GUEST_OPTIONS = {
  log: { type: 'string' },
  vcpus: { type: 'string' },
  memory: { type: 'string' },
  memslots: { type: 'string' },
  'ring-entries': { type: 'string' },
  'clear-chunk-pages': { type: 'string' },
  'initially-set': { type: 'boolean' },
  workload: { type: 'string' },
  'burst-pages': { type: 'string' },
  'burst-percent': { type: 'string' },
  'device-writers': { type: 'string' },
  'device-interval-us': { type: 'string' },
  'ring-with-bitmap': { type: 'string' },
  mutant: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** What the shared options say, in the configuration's terms (validated by the command's config). */
export interface GuestInput {
  log: LogMode | undefined;
  vcpus: number | undefined;
  memoryBytes: number | undefined;
  memslots: number | undefined;
  ringEntries: number | undefined;
  clearChunkPages: number | undefined;
  initiallySet: boolean | undefined;
  workload: WorkloadKind | undefined;
  burstPages: number | undefined;
  burstPercent: number | undefined;
  deviceWriters: number | undefined;
  deviceIntervalUs: number | undefined;
  ringWithBitmap: boolean | undefined;
  seed: number | undefined;
  mutants: number;
}

type GuestValues = { [K in keyof typeof GUEST_OPTIONS]?: (typeof GUEST_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

export function guestInput(values: GuestValues): GuestInput {
  return {
    log: values.log as LogMode | undefined,
    vcpus: intOption('vcpus', values.vcpus),
    memoryBytes: values.memory === undefined ? undefined : parseSize('--memory', values.memory),
    memslots: intOption('memslots', values.memslots),
    ringEntries: intOption('ring-entries', values['ring-entries']),
    clearChunkPages: intOption('clear-chunk-pages', values['clear-chunk-pages']),
    initiallySet: values['initially-set'],
    workload: values.workload as WorkloadKind | undefined,
    burstPages: intOption('burst-pages', values['burst-pages']),
    burstPercent: intOption('burst-percent', values['burst-percent']),
    deviceWriters: intOption('device-writers', values['device-writers']),
    deviceIntervalUs: intOption('device-interval-us', values['device-interval-us']),
    ringWithBitmap: onOffOption('ring-with-bitmap', values['ring-with-bitmap']),
    seed: intOption('seed', values.seed),
    mutants: mutantOption(values.mutant),
  };
}

/** An integer option, or undefined when absent; anything else is EINVAL naming the option. */
export function intOption(param: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected an integer');
  return Number(v);
}

export function onOffOption(param: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected on or off');
  return v === 'on';
}

export function mutantOption(v: string | undefined): number {
  let mutants = 0;
  if (!v) return 0;
  for (const name of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const bit = MUTANT_NAMES[name];
    if (bit === undefined) {
      throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')})`);
    }
    mutants |= bit;
  }
  return mutants;
}
