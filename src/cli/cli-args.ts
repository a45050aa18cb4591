/**
 * Argument handling shared by the commands that run a guest: the options that describe the
 * guest and its VM (one declaration, one parse), and integers, sizes, mutants, on/off.
 * dirty-rate, run and migrate all take VM_OPTIONS; run and migrate the rest of GUEST_OPTIONS;
 * migrate and dirty-rate PACE_OPTIONS.
 */
import { ConfigError } from '../base/config-error.js';
import { parseSize } from '../harness/run-config.js';
import type { WorkloadKind } from '../guest/workloads.js';
import { MUTANT_NAMES } from '../userspace/known-bugs.js';
import type { LogMode } from '../userspace/log-collectors.js';

/** node:util parseArgs specs of the options every guest-running command takes. */
export const VM_OPTIONS = {
  vcpus: { type: 'string' },
  memory: { type: 'string' },
  'ring-entries': { type: 'string' },
  workload: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The options `run` and `migrate` share: the VM's, plus logging, devices, mutants. */
export const GUEST_OPTIONS = {
  ...VM_OPTIONS,
  log: { type: 'string' },
  memslots: { type: 'string' },
  'clear-chunk-pages': { type: 'string' },
  'initially-set': { type: 'boolean' },
  'burst-pages': { type: 'string' },
  'burst-percent': { type: 'string' },
  'device-writers': { type: 'string' },
  'device-interval-us': { type: 'string' },
  'ring-with-bitmap': { type: 'string' },
  mutant: { type: 'string' },
} as const;

/** How hard and where the guest writes, and for how long before measuring: migrate and dirty-rate. */
export const PACE_OPTIONS = {
  'dirty-rate-mibs': { type: 'string' },
  'working-set': { type: 'string' },
  'warmup-ms': { type: 'string' },
} as const;

/** What parseArgs returns for a set of option specs. */
type Values<O> = { [K in keyof O]?: O[K] extends { readonly type: 'boolean' } ? boolean : string };

/** What VM_OPTIONS say, in the configurations' terms (each command's config validates them). */
export interface VmInput {
  vcpus: number | undefined;
  memoryBytes: number | undefined;
  ringEntries: number | undefined;
  workload: WorkloadKind | undefined;
  seed: number | undefined;
}

export function vmInput(values: Values<typeof VM_OPTIONS>): VmInput {
  return {
    vcpus: intOption('vcpus', values.vcpus),
    memoryBytes: values.memory === undefined ? undefined : parseSize('--memory', values.memory),
    ringEntries: intOption('ring-entries', values['ring-entries']),
    workload: values.workload as WorkloadKind | undefined,
    seed: intOption('seed', values.seed),
  };
}

/** What PACE_OPTIONS say. A working set of 0 means all memory, as in both configs. */
export interface PaceInput {
  dirtyRateMiBs: number | undefined;
  workingSetBytes: number | undefined;
  warmupMs: number | undefined;
}

export function paceInput(values: Values<typeof PACE_OPTIONS>): PaceInput {
  return {
    dirtyRateMiBs: intOption('dirty-rate-mibs', values['dirty-rate-mibs']),
    workingSetBytes: values['working-set'] === undefined ? undefined : parseSize('--working-set', values['working-set']),
    warmupMs: intOption('warmup-ms', values['warmup-ms']),
  };
}

/** What the shared options say, in the configuration's terms (validated by the command's config). */
export interface GuestInput extends VmInput {
  log: LogMode | undefined;
  memslots: number | undefined;
  clearChunkPages: number | undefined;
  initiallySet: boolean | undefined;
  burstPages: number | undefined;
  burstPercent: number | undefined;
  deviceWriters: number | undefined;
  deviceIntervalUs: number | undefined;
  ringWithBitmap: boolean | undefined;
  mutants: number;
}

export function guestInput(values: Values<typeof GUEST_OPTIONS>): GuestInput {
  return {
    ...vmInput(values),
    log: values.log as LogMode | undefined,
    memslots: intOption('memslots', values.memslots),
    clearChunkPages: intOption('clear-chunk-pages', values['clear-chunk-pages']),
    initiallySet: values['initially-set'],
    burstPages: intOption('burst-pages', values['burst-pages']),
    burstPercent: intOption('burst-percent', values['burst-percent']),
    deviceWriters: intOption('device-writers', values['device-writers']),
    deviceIntervalUs: intOption('device-interval-us', values['device-interval-us']),
    ringWithBitmap: onOffOption('ring-with-bitmap', values['ring-with-bitmap']),
    mutants: mutantOption(values.mutant),
  };
}

/** An integer option, or undefined when absent; anything else is EINVAL naming the option. */
export function intOption(param: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected an integer');
  return Number(v);
}

function onOffOption(param: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected on or off');
  return v === 'on';
}

function mutantOption(v: string | undefined): number {
  let mutants = 0;
  if (v === undefined) return 0;
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  // `--mutant ''` or `--mutant ,` names no mutant: running none would pass for a run that asked for one.
  if (names.length === 0) throw new ConfigError('--mutant', `'${v}'`, 'EINVAL', 'expected a mutant name (or a comma-separated list)');
  for (const name of names) {
    const bit = MUTANT_NAMES[name];
    if (bit === undefined) {
      throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')})`);
    }
    mutants |= bit;
  }
  return mutants;
}

/**
 * `--vcpus -1`: parseArgs takes "-1" for an option and refuses it as ambiguous. A value that
 * is a negative number is meant as the option's value; joined as `--vcpus=-1`, it reaches the
 * option's own check, which says what range it takes.
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (/^--[^=]+$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** parseArgs' errors, as one line naming the option and EINVAL like every other bad input. */
export function parseArgsMessage(e: unknown): string | null {
  if (!(e instanceof TypeError)) return null;
  const code = (e as { code?: string }).code;
  if (code === undefined || !code.startsWith('ERR_PARSE_ARGS')) return null;
  const name = /'(-[^' ]*)/.exec(e.message)?.[1] ?? /'([^']*)'/.exec(e.message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `${name}: EINVAL, unknown option (see --help)`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `${name}: EINVAL, unexpected argument (options are --name value)`;
  if (e.message.includes('does not take an argument')) return `${name}: EINVAL, takes no value`;
  if (e.message.includes('ambiguous')) {
    return `${name}: EINVAL, expects a value, and the next argument is an option (for a value starting with a dash, write ${name}=VALUE)`;
  }
  if (e.message.includes('missing')) return `${name}: EINVAL, expects a value`;
  return `${name}: EINVAL, ${e.message}`;
}
