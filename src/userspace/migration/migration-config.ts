/**
 * A migration's parameters, defaults and validation. Errors name the parameter as the CLI
 * spells it and the errno the kernel (or QEMU's equivalent check) would give; nothing starts
 * unless every parameter is valid.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { ConfigError } from '../../base/config-error.js';
import { int, randomSeed, stripUndefined } from '../../base/config-values.js';
import { MiB } from '../../base/units.js';
import { type GuestShape, validateGuestShape } from '../guest-shape.js';
import { MAX_DIRTY_RATE_MIBS, validateDirtyRateMiBs, validateWarmupMs, validateWorkingSet } from './pacing-config.js';

/** A migration's parameters: the guest's (GuestShape, whose log mode picks how it is synced) and the migration's own. */
export interface MigrationConfig extends GuestShape {
  /** The link between source and destination, in MiB/s... */
  readonly bandwidthMiBs: number;
  /** ...or in pages per second (0: use bandwidthMiBs). */
  readonly bandwidthPagesPerSec: number;
  /** Converged when the remaining dirty pages would go over the link within this. */
  readonly maxDowntimeMs: number;
  /** Iterative rounds (the bulk pass included) before stop-and-copy is forced. */
  readonly maxRounds: number;
  /** Dirty-limit quota per vCPU in MiB/s (0: off). Needs --log ring. */
  readonly dirtyLimitMiBs: number;
  /** Dirty-limit: how often each vCPU's rate is measured and its throttle adjusted (QEMU: 1000). */
  readonly dirtyLimitPeriodMs: number;
  /** Guest pacing: page writes per second per vCPU × 4 KiB, in MiB/s (0: as fast as it can). */
  readonly dirtyRateMiBs: number;
  /** Bytes of guest memory the workload writes (from the start of memory; 0: all of it). */
  readonly workingSetBytes: number;
  /** Apply pages in a separate destination thread (through the wire) instead of in the loop. */
  readonly destinationThread: boolean;
  /** Let the guest run this long before the migration starts. */
  readonly warmupMs: number;
  readonly mutants: number;
}

export const MIGRATION_DEFAULTS: Omit<MigrationConfig, 'seed' | 'ringWithBitmap'> = {
  log: 'ring',
  vcpus: 4,
  memoryBytes: 256 * MiB,
  memslots: 1,
  ringEntries: 4096,
  clearChunkPages: 4096,
  initiallySet: false,
  bandwidthMiBs: 200,
  bandwidthPagesPerSec: 0,
  maxDowntimeMs: 50,
  maxRounds: 30,
  dirtyLimitMiBs: 0,
  dirtyLimitPeriodMs: 1000,
  dirtyRateMiBs: 8,
  workingSetBytes: 0,
  workload: 'random',
  burstPages: 8,
  burstPercent: 5,
  deviceWriters: 0,
  deviceIntervalUs: 200,
  destinationThread: false,
  warmupMs: 0,
  mutants: 0,
};

/** Links far beyond any real one (about 4 TB/s in pages, 1 TiB/s in MiB/s): these bounds only catch typos. */
const MAX_BANDWIDTH_PAGES_PER_SEC = 1_000_000_000;
const MAX_BANDWIDTH_MIBS = 1_000_000;
/** One hour, in ms. */
const MAX_DOWNTIME_MS = 3_600_000;
const MAX_ROUNDS = 100_000;
/** The same bound as the guest's own rate (MAX_DIRTY_RATE_MIBS): a quota above it limits nothing. */
const MAX_DIRTY_LIMIT_MIBS = MAX_DIRTY_RATE_MIBS;
/** A period must hold enough ring entries for a rate to be measured (QEMU's default: 1000 ms), and at most a minute. */
const MIN_DIRTY_LIMIT_PERIOD_MS = 10;
const MAX_DIRTY_LIMIT_PERIOD_MS = 60_000;

export function validateMigrationConfig(input: Partial<MigrationConfig>): MigrationConfig {
  const c = { ...MIGRATION_DEFAULTS, seed: input.seed ?? randomSeed(), ...stripUndefined(input) };
  const { pages: _pages, ...guest } = validateGuestShape(c, input);
  // QEMU refuses dirty-limit without a dirty ring: the rates and the throttle both come from it.
  if (input.dirtyLimitMiBs !== undefined && input.dirtyLimitMiBs !== 0 && guest.log !== 'ring') {
    throw new ConfigError('--dirty-limit-mibs', input.dirtyLimitMiBs, 'EINVAL', 'dirty-limit needs the dirty ring (--log ring)');
  }
  if (input.bandwidthPagesPerSec !== undefined && input.bandwidthPagesPerSec !== 0 && input.bandwidthMiBs !== undefined) {
    throw new ConfigError('--bandwidth-pages', input.bandwidthPagesPerSec, 'EINVAL', 'give the bandwidth in pages or in MiB/s (--bandwidth-mibs), not both');
  }
  const bandwidthPagesPerSec = int('--bandwidth-pages', c.bandwidthPagesPerSec, 0, MAX_BANDWIDTH_PAGES_PER_SEC, 'bandwidth (pages/s)');
  const bandwidthMiBs = int('--bandwidth-mibs', c.bandwidthMiBs, 1, MAX_BANDWIDTH_MIBS, 'bandwidth (MiB/s)');
  const maxDowntimeMs = int('--max-downtime-ms', c.maxDowntimeMs, 1, MAX_DOWNTIME_MS, 'maximum downtime');
  const maxRounds = int('--max-rounds', c.maxRounds, 1, MAX_ROUNDS, 'round limit');
  const dirtyLimitMiBs = int('--dirty-limit-mibs', c.dirtyLimitMiBs, 0, MAX_DIRTY_LIMIT_MIBS, 'dirty-limit quota (MiB/s per vCPU)');
  const dirtyLimitPeriodMs = int('--dirty-limit-period-ms', c.dirtyLimitPeriodMs, MIN_DIRTY_LIMIT_PERIOD_MS, MAX_DIRTY_LIMIT_PERIOD_MS, 'dirty-limit period');
  const dirtyRateMiBs = validateDirtyRateMiBs(c.dirtyRateMiBs);
  const workingSetBytes = validateWorkingSet(c.workingSetBytes, c.memoryBytes);
  const warmupMs = validateWarmupMs(c.warmupMs);
  return {
    ...guest,
    bandwidthMiBs,
    bandwidthPagesPerSec,
    maxDowntimeMs,
    maxRounds,
    dirtyLimitMiBs,
    dirtyLimitPeriodMs,
    dirtyRateMiBs,
    workingSetBytes,
    destinationThread: c.destinationThread === true,
    warmupMs,
    mutants: c.mutants >>> 0,
  };
}

/** The link's bandwidth in bytes per second, whichever unit it was given in. */
export function bandwidthBytesPerSecond(config: MigrationConfig): number {
  return config.bandwidthPagesPerSec > 0 ? config.bandwidthPagesPerSec * PAGE_SIZE : config.bandwidthMiBs * MiB;
}
