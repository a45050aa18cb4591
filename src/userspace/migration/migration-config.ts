/**
 * A migration's parameters, defaults and validation. Errors name the parameter as the CLI
 * spells it and the errno the kernel (or QEMU's equivalent check) would give; nothing starts
 * unless every parameter is valid.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import type { WorkloadKind } from '../../guest/workloads.js';
import { ConfigError } from '../../base/config-error.js';
import { int, randomSeed, stripUndefined, validateGuestShape } from '../../harness/run-config.js';
import type { LogMode } from '../log-collectors.js';

export interface MigrationConfig {
  /** ring (harvest + reset), bitmap (legacy GET), clear (manual protect: GET, CLEAR before copying). */
  readonly log: LogMode;
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly memslots: number;
  readonly ringEntries: number;
  /** --log clear: pages per KVM_CLEAR_DIRTY_LOG (a multiple of 64). */
  readonly clearChunkPages: number;
  /** --log clear: KVM_DIRTY_LOG_INITIALLY_SET (QEMU enables it when the kernel offers it). */
  readonly initiallySet: boolean;
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
  readonly workload: WorkloadKind;
  readonly burstPages: number;
  readonly burstPercent: number;
  readonly deviceWriters: number;
  readonly deviceIntervalUs: number;
  /** --log ring with devices: cap 225, the device bitmap read last. */
  readonly ringWithBitmap: boolean;
  /** Apply pages in a separate destination thread (through the wire) instead of in the loop. */
  readonly destinationThread: boolean;
  /** Let the guest run this long before the migration starts. */
  readonly warmupMs: number;
  readonly seed: number;
  readonly mutants: number;
}

export const MIGRATION_DEFAULTS: Omit<MigrationConfig, 'seed' | 'ringWithBitmap'> = {
  log: 'ring',
  vcpus: 4,
  memoryBytes: 256 * 2 ** 20,
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
  const bandwidthPagesPerSec = int('--bandwidth-pages', c.bandwidthPagesPerSec, 0, 1_000_000_000, 'bandwidth (pages/s)');
  const bandwidthMiBs = int('--bandwidth-mibs', c.bandwidthMiBs, 1, 1_000_000, 'bandwidth (MiB/s)');
  const maxDowntimeMs = int('--max-downtime-ms', c.maxDowntimeMs, 1, 3_600_000, 'maximum downtime');
  const maxRounds = int('--max-rounds', c.maxRounds, 1, 100_000, 'round limit');
  const dirtyLimitMiBs = int('--dirty-limit-mibs', c.dirtyLimitMiBs, 0, 1_000_000, 'dirty-limit quota (MiB/s per vCPU)');
  const dirtyLimitPeriodMs = int('--dirty-limit-period-ms', c.dirtyLimitPeriodMs, 10, 60_000, 'dirty-limit period');
  const dirtyRateMiBs = int('--dirty-rate-mibs', c.dirtyRateMiBs, 0, 1_000_000, 'guest dirty rate (MiB/s per vCPU)');
  if (typeof c.workingSetBytes !== 'number' || !Number.isSafeInteger(c.workingSetBytes) || c.workingSetBytes < 0) {
    throw new ConfigError('--working-set', c.workingSetBytes, 'EINVAL', 'working set must be a number of bytes');
  }
  if (c.workingSetBytes % PAGE_SIZE !== 0 || c.workingSetBytes > c.memoryBytes) {
    throw new ConfigError('--working-set', c.workingSetBytes, 'EINVAL', `working set must be whole pages, at most --memory (${c.memoryBytes})`);
  }
  const warmupMs = int('--warmup-ms', c.warmupMs, 0, 3_600_000, 'warm-up');
  return {
    ...guest,
    bandwidthMiBs,
    bandwidthPagesPerSec,
    maxDowntimeMs,
    maxRounds,
    dirtyLimitMiBs,
    dirtyLimitPeriodMs,
    dirtyRateMiBs,
    workingSetBytes: c.workingSetBytes,
    destinationThread: c.destinationThread === true,
    warmupMs,
    mutants: c.mutants >>> 0,
  };
}

/** The link's bandwidth in bytes per second, whichever unit it was given in. */
export function bandwidthBytesPerSecond(config: MigrationConfig): number {
  return config.bandwidthPagesPerSec > 0 ? config.bandwidthPagesPerSec * PAGE_SIZE : config.bandwidthMiBs * 2 ** 20;
}
