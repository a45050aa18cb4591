/**
 * A run's parameters, their defaults, and their validation. Every error names the parameter
 * (as the CLI spells it) and the errno the kernel would give for the equivalent ioctl input.
 * The guest's own parameters (memory, vCPUs, logging interface) are validated by
 * src/userspace/guest-shape.ts, which `migrate` and `dirty-rate` share.
 */
import { ConfigError } from '../base/config-error.js';
import { int, randomSeed, stripUndefined } from '../base/config-values.js';
import { GiB, KiB, MiB, TiB } from '../base/units.js';
import { type GuestShape, validateGuestShape } from '../userspace/guest-shape.js';
import { TRACK_DEFAULTS, type TrackOptions, resolveTrackOptions } from './page-track-config.js';

// The CLI and the stress harness configure runs through this module.
export { randomSeed } from '../base/config-values.js';
export { type GuestShape, validateLogMode, validateRingEntries } from '../userspace/guest-shape.js';

/** A run's parameters: the guest's (GuestShape), page write-tracking's (TrackOptions), and the run's own. */
export interface RunConfig extends GuestShape, TrackOptions {
  readonly iterations: number;
  readonly intervalMs: number;
  readonly harvestIntervalMs: number;
  /** Instructions per vCPU per iteration, then halt (0: run for the interval). */
  readonly writesPerIteration: number;
  readonly mutants: number;
  /** Log every store (the instruction-emulator path) instead of the hardware fault path. */
  readonly emulateAllStores: boolean;
  /**
   * Pages of SMRAM: an address-space-1 memslot (the VM then has SMM) that the vCPUs write from
   * System Management Mode — an SMI, a store to SMRAM, an rsm — in a share of their writes.
   * 0: no SMM.
   */
  readonly smmPages: number;
  /**
   * The design of the reaction to exit 31 with ring logging. On (the default with --log ring):
   * the vCPU thread harvests its own ring and resets (QEMU's reaction,
   * src/userspace/self-reaper.ts), and userspace's collections drain what it reaped. Off: the
   * hand-off design, where the vCPU stalls until userspace has collected. A run whose collector
   * is a caller's (a user's harvester, a stress variant) uses the hand-off design unless that
   * collector drains the shared reaper (LogCollector.selfReaper): it is the reaper under test.
   */
  readonly selfReap: boolean;
}

/** The defaults; selfReap's depends on the log mode (on for ring logging). */
export const RUN_DEFAULTS: Omit<RunConfig, 'seed' | 'ringWithBitmap' | 'selfReap'> = {
  log: 'ring',
  clearChunkPages: 1024,
  initiallySet: false,
  deviceWriters: 0,
  deviceIntervalUs: 100,
  vcpus: 2,
  memoryBytes: 64 * MiB,
  memslots: 1,
  ringEntries: 4096,
  iterations: 8,
  intervalMs: 10,
  harvestIntervalMs: 2,
  workload: 'random',
  burstPages: 8,
  burstPercent: 5,
  writesPerIteration: 0,
  mutants: 0,
  emulateAllStores: false,
  smmPages: 0,
  ...TRACK_DEFAULTS,
};

/** Upper bounds of the run's own parameters: far beyond any useful run, below overflow. */
const MAX_ITERATIONS = 1_000_000;
/** One hour, in ms: the longest interval (iteration or harvest) accepted. */
const MAX_INTERVAL_MS = 3_600_000;
const MAX_WRITES_PER_ITERATION = 1e9;
/** 256 MiB of SMRAM: far more than a TSEG (at most 8 MiB), less than a memslot's limit. */
const MAX_SMM_PAGES = 65536;

export function validateRunConfig(input: Partial<RunConfig>): RunConfig {
  const c = { ...RUN_DEFAULTS, seed: input.seed ?? randomSeed(), ...stripUndefined(input) };
  const { pages, ...guest } = validateGuestShape(c, input);
  const iterations = int('--iterations', c.iterations, 1, MAX_ITERATIONS, 'iteration count');
  const intervalMs = int('--interval-ms', c.intervalMs, 1, MAX_INTERVAL_MS, 'interval');
  const harvestIntervalMs = int('--harvest-interval-ms', c.harvestIntervalMs, 1, MAX_INTERVAL_MS, 'harvest interval');
  const writesPerIteration = int('--writes-per-iteration', c.writesPerIteration, 0, MAX_WRITES_PER_ITERATION, 'writes per iteration');
  const smmPages = int('--smm-pages', c.smmPages, 0, MAX_SMM_PAGES, 'SMRAM page count');
  if (input.selfReap !== undefined && typeof input.selfReap !== 'boolean') {
    throw new ConfigError('--self-reap', String(input.selfReap), 'EINVAL', 'expected true or false');
  }
  const selfReap = input.selfReap ?? guest.log === 'ring';
  if (selfReap && guest.log !== 'ring') {
    throw new ConfigError('--self-reap', 'on', 'EINVAL', 'self-reap harvests dirty rings: it needs --log ring');
  }
  const track = resolveTrackOptions(input, pages, guest.deviceWriters);
  if ('problem' in track) throw new ConfigError(track.problem.param, track.problem.value, track.problem.errno, track.problem.reason);
  return {
    ...guest,
    iterations,
    intervalMs,
    harvestIntervalMs,
    writesPerIteration,
    mutants: c.mutants >>> 0,
    emulateAllStores: c.emulateAllStores === true,
    smmPages,
    selfReap,
    ...track.options,
  };
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, K: KiB, M: MiB, G: GiB, T: TiB };

/** Parse "64MiB", "1GiB", "4096", "512KiB", "2G" into bytes. */
export function parseSize(param: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)$/i.exec(text.trim());
  if (!m) throw new ConfigError(param, text, 'EINVAL', 'expected a size like 64MiB, 1GiB or 4096');
  const bytes = Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toUpperCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(param, text, 'EINVAL', 'size must be a whole number of bytes');
  return bytes;
}
