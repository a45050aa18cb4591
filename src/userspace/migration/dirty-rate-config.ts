/**
 * A dirty-rate measurement's parameters, defaults and validation (`dirtyring dirty-rate`, like
 * QEMU's calc-dirty-rate). Errors name the parameter as the CLI spells it and the errno.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import type { WorkloadKind } from '../../guest/workloads.js';
import { ConfigError } from '../../base/config-error.js';
import { MAX_SEED, int, randomSeed, stripUndefined } from '../../base/config-values.js';
import { GiB, MiB } from '../../base/units.js';
import { MAX_GUEST_VCPUS, MAX_SLOT_BYTES, validateRingEntries, validateWorkload } from '../guest-shape.js';
import { validateDirtyRateMiBs, validateWarmupMs, validateWorkingSet } from './pacing-config.js';

export const DIRTY_RATE_MODES = ['ring', 'bitmap', 'sampling'] as const;
export type DirtyRateMode = (typeof DIRTY_RATE_MODES)[number];

/** QEMU's calc-dirty-rate limits on the period, and its default sample density. */
export const MIN_PERIOD_MS = 50;
export const MAX_PERIOD_MS = 60_000;
export const DEFAULT_SAMPLE_PAGES_PER_GIB = 512;
/** QEMU accepts 128..1048576 sampled pages per GiB. */
const MIN_SAMPLE_PAGES_PER_GIB = 128;
const MAX_SAMPLE_PAGES_PER_GIB = 1_048_576;

export interface DirtyRateConfig {
  readonly modes: readonly DirtyRateMode[];
  readonly periodMs: number;
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly ringEntries: number;
  /** Guest pacing per vCPU in MiB/s of page writes (0: unpaced). */
  readonly dirtyRateMiBs: number;
  readonly workingSetBytes: number;
  readonly workload: WorkloadKind;
  readonly samplePagesPerGiB: number;
  /** Guest run time before the period starts. */
  readonly warmupMs: number;
  readonly seed: number;
}

export const DIRTY_RATE_DEFAULTS: Omit<DirtyRateConfig, 'seed'> = {
  modes: ['sampling'],
  periodMs: 1000,
  vcpus: 4,
  memoryBytes: 256 * MiB,
  ringEntries: 4096,
  dirtyRateMiBs: 8,
  workingSetBytes: 0,
  workload: 'random',
  samplePagesPerGiB: DEFAULT_SAMPLE_PAGES_PER_GIB,
  warmupMs: 200,
};

export function validateDirtyRateConfig(input: Partial<DirtyRateConfig>): DirtyRateConfig {
  const c: DirtyRateConfig = { ...DIRTY_RATE_DEFAULTS, seed: input.seed ?? randomSeed(), ...stripUndefined(input) };
  const modes = [...new Set(c.modes)];
  if (modes.length === 0 || modes.some((m) => !(DIRTY_RATE_MODES as readonly string[]).includes(m))) {
    throw new ConfigError('--mode', modes.join(','), 'EINVAL', `mode must be one or more of ${DIRTY_RATE_MODES.join(', ')}`);
  }
  if (modes.includes('ring') && modes.includes('bitmap')) {
    // A VM with a dirty ring has no bitmaps: GET would fail with ENXIO.
    throw new ConfigError('--mode', modes.join(','), 'ENXIO', 'ring and bitmap cannot be measured on one VM');
  }
  if (input.ringEntries !== undefined && !modes.includes('ring')) {
    throw new ConfigError('--ring-entries', input.ringEntries, 'EINVAL', 'a ring size needs --mode ring');
  }
  const periodMs = int('--period-ms', c.periodMs, MIN_PERIOD_MS, MAX_PERIOD_MS, 'period');
  const vcpus = int('--vcpus', c.vcpus, 1, MAX_GUEST_VCPUS, 'vCPU count');
  if (!Number.isSafeInteger(c.memoryBytes) || c.memoryBytes <= 0 || c.memoryBytes % PAGE_SIZE !== 0 || c.memoryBytes > MAX_SLOT_BYTES) {
    // One memslot holds all of the guest's memory.
    throw new ConfigError('--memory', c.memoryBytes, 'EINVAL', `memory must be whole pages, at most ${MAX_SLOT_BYTES / GiB} GiB`);
  }
  const ringEntries = validateRingEntries(c.ringEntries);
  const dirtyRateMiBs = validateDirtyRateMiBs(c.dirtyRateMiBs);
  const workingSetBytes = validateWorkingSet(c.workingSetBytes, c.memoryBytes);
  const workload = validateWorkload(c.workload);
  const samplePagesPerGiB = int('--sample-pages-per-gib', c.samplePagesPerGiB, MIN_SAMPLE_PAGES_PER_GIB, MAX_SAMPLE_PAGES_PER_GIB, 'sample density');
  const warmupMs = validateWarmupMs(c.warmupMs);
  const seed = int('--seed', c.seed, 0, MAX_SEED, 'seed');
  return { modes, periodMs, vcpus, memoryBytes: c.memoryBytes, ringEntries, dirtyRateMiBs, workingSetBytes, workload, samplePagesPerGiB, warmupMs, seed };
}

