/**
 * A run's parameters, their defaults, and their validation. Every error names the parameter
 * (as the CLI spells it) and the errno the kernel would give for the equivalent ioctl input.
 */
import { DIRTY_GFN_BYTES, KVM_DIRTY_RING_MAX_ENTRIES, KVM_DIRTY_RING_RSVD_ENTRIES, KVM_MEM_MAX_NR_PAGES, PAGE_SIZE } from '../abi/constants.js';
import { isKvmError } from '../abi/errno.js';
import { ConfigError } from '../base/config-error.js';
import { MAX_INSN_PAGES } from '../guest/instruction.js';
import { WORKLOAD_KINDS, type WorkloadKind } from '../guest/workloads.js';
import { validateRingBytes } from '../kernel/dirty-ring.js';
import { Mutant } from '../userspace/known-bugs.js';
import { MEMSLOT_TABLE_ENTRIES } from '../kernel/memslot-layout.js';
import { LOG_MODES, type LogMode } from '../userspace/log-collectors.js';
import { TRACK_DEFAULTS, type TrackOptions, resolveTrackOptions } from './page-track-config.js';

/** A run's parameters; page write-tracking's (trackPages, ...) come from TrackOptions (issue 4). */
export interface RunConfig extends TrackOptions {
  /** ring (dirty rings + reset), bitmap (legacy GET), clear (manual protect: GET then CLEAR). */
  readonly log: LogMode;
  /** --log clear: pages per KVM_CLEAR_DIRTY_LOG call (a multiple of 64). */
  readonly clearChunkPages: number;
  /** --log clear: KVM_DIRTY_LOG_INITIALLY_SET (every page dirty in the first round). */
  readonly initiallySet: boolean;
  /** DMA device threads writing guest memory with no running vCPU. */
  readonly deviceWriters: number;
  /** Pause between two writes of a device, in microseconds. */
  readonly deviceIntervalUs: number;
  /**
   * --log ring with devices: enable KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP (as arm64 offers) so
   * their writes reach a bitmap; without it they are lost and the oracle must say so.
   */
  readonly ringWithBitmap: boolean;
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly memslots: number;
  readonly ringEntries: number;
  readonly iterations: number;
  readonly intervalMs: number;
  readonly harvestIntervalMs: number;
  readonly workload: WorkloadKind;
  readonly seed: number;
  readonly burstPages: number;
  readonly burstPercent: number;
  /** Instructions per vCPU per iteration, then halt (0: run for the interval). */
  readonly writesPerIteration: number;
  readonly mutants: number;
  /** Log every store (the instruction-emulator path) instead of the hardware fault path. */
  readonly emulateAllStores: boolean;
  /**
   * React to exit 31 in the vCPU thread: it harvests its own ring and resets (QEMU's reaction,
   * src/userspace/self-reaper.ts) instead of stalling until userspace does. Default off.
   */
  readonly selfReap: boolean;
}

export const RUN_DEFAULTS: Omit<RunConfig, 'seed' | 'ringWithBitmap'> = {
  log: 'ring',
  clearChunkPages: 1024,
  initiallySet: false,
  deviceWriters: 0,
  deviceIntervalUs: 100,
  vcpus: 2,
  memoryBytes: 64 * 1024 * 1024,
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
  selfReap: false,
  ...TRACK_DEFAULTS,
};

/** The emulator runs one worker thread per vCPU; beyond this the machine only thrashes. */
export const MAX_RUN_VCPUS = 64;
export const MAX_DEVICE_WRITERS = 8;
/** Each memslot is one SharedArrayBuffer. */
export const MAX_SLOT_BYTES = 2 ** 31;

/** An integer parameter in [min, max], or EINVAL naming it. */
export function int(param: string, value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(param, value, 'EINVAL', `${what} must be an integer`);
  if (value < min || value > max) throw new ConfigError(param, value, 'EINVAL', `${what} must be between ${min} and ${max}`);
  return value;
}

/** Ring size in entries, validated by the kernel's own rules on entries × 16 bytes. */
export function validateRingEntries(entries: unknown, param = '--ring-entries'): number {
  if (typeof entries !== 'number' || !Number.isInteger(entries) || entries < 0) {
    throw new ConfigError(param, entries, 'EINVAL', 'ring size must be a positive integer number of entries');
  }
  try {
    validateRingBytes(entries * DIRTY_GFN_BYTES);
  } catch (e) {
    if (!isKvmError(e)) throw e;
    const min = Math.max(PAGE_SIZE / DIRTY_GFN_BYTES, KVM_DIRTY_RING_RSVD_ENTRIES);
    const reason =
      e.errno === 'E2BIG'
        ? `ring size must be at most ${KVM_DIRTY_RING_MAX_ENTRIES} entries (1 MiB)`
        : entries === 0 || (entries & (entries - 1)) !== 0
          ? 'ring size must be a power of two'
          : `ring size must be at least ${min} entries (${min * DIRTY_GFN_BYTES} bytes)`;
    throw new ConfigError(param, entries, e.errno, reason);
  }
  return entries;
}

/** The logging interface named by `--log`. */
export function validateLogMode(value: unknown): LogMode {
  if (!(LOG_MODES as readonly unknown[]).includes(value)) {
    throw new ConfigError('--log', value, 'EINVAL', `log must be one of ${LOG_MODES.join(', ')}`);
  }
  return value as LogMode;
}

/** The guest, its memory and the logging interface: what run and migrate both configure. */
export interface GuestShape {
  readonly log: LogMode;
  readonly clearChunkPages: number;
  readonly initiallySet: boolean;
  readonly deviceWriters: number;
  readonly deviceIntervalUs: number;
  readonly ringWithBitmap: boolean;
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly memslots: number;
  readonly ringEntries: number;
  readonly workload: WorkloadKind;
  readonly burstPages: number;
  readonly burstPercent: number;
  readonly seed: number;
}

type GuestShapeValues = { readonly [K in keyof GuestShape]?: unknown };

/**
 * Validates the part of a run's or a migration's parameters that both have: `c` holds the
 * values with the defaults applied, `input` what the caller set (a flag that only fits another
 * log mode is refused only when it was asked for). Returns the valid values and the page count.
 */
export function validateGuestShape(c: GuestShapeValues, input: GuestShapeValues): GuestShape & { readonly pages: number } {
  const log = validateLogMode(c.log);
  // Combinations the kernel would refuse, named by the flag that asks for them.
  if (input.ringEntries !== undefined && log !== 'ring') {
    throw new ConfigError('--ring-entries', input.ringEntries, 'EINVAL', 'a ring size needs --log ring');
  }
  if (input.initiallySet === true && log !== 'clear') {
    throw new ConfigError('--initially-set', 'on', 'EINVAL', 'KVM_DIRTY_LOG_INITIALLY_SET needs manual protect (--log clear)');
  }
  if (input.clearChunkPages !== undefined && log !== 'clear') {
    throw new ConfigError('--clear-chunk-pages', input.clearChunkPages, 'EINVAL', 'CLEAR chunks need --log clear');
  }
  if (input.ringWithBitmap !== undefined && log !== 'ring') {
    throw new ConfigError('--ring-with-bitmap', input.ringWithBitmap ? 'on' : 'off', 'EINVAL', 'ring-with-bitmap needs --log ring');
  }
  const clearChunkPages = int('--clear-chunk-pages', c.clearChunkPages, 64, KVM_MEM_MAX_NR_PAGES, 'CLEAR chunk');
  if (clearChunkPages % 64 !== 0) {
    throw new ConfigError('--clear-chunk-pages', clearChunkPages, 'EINVAL', 'CLEAR chunks must be a multiple of 64 pages');
  }
  const deviceWriters = int('--device-writers', c.deviceWriters, 0, MAX_DEVICE_WRITERS, 'device writer count');
  const deviceIntervalUs = int('--device-interval-us', c.deviceIntervalUs, 1, 1_000_000, 'device write interval');
  const vcpus = int('--vcpus', c.vcpus, 1, MAX_RUN_VCPUS, 'vCPU count');
  const memoryBytes = c.memoryBytes;
  if (typeof memoryBytes !== 'number' || !Number.isSafeInteger(memoryBytes) || memoryBytes <= 0) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', 'memory size must be a positive number of bytes');
  }
  if (memoryBytes % PAGE_SIZE !== 0) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', `memory size must be a multiple of ${PAGE_SIZE} bytes`);
  }
  const pages = memoryBytes / PAGE_SIZE;
  const memslots = int('--memslots', c.memslots, 1, Math.min(MEMSLOT_TABLE_ENTRIES, pages), 'memslot count');
  const slotPages = Math.ceil(pages / memslots);
  if (slotPages * PAGE_SIZE > MAX_SLOT_BYTES || slotPages > KVM_MEM_MAX_NR_PAGES) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', `each memslot must be at most ${MAX_SLOT_BYTES / 2 ** 30} GiB; add --memslots`);
  }
  const ringEntries = validateRingEntries(c.ringEntries);
  if (!(WORKLOAD_KINDS as readonly unknown[]).includes(c.workload)) {
    throw new ConfigError('--workload', c.workload, 'EINVAL', `workload must be one of ${WORKLOAD_KINDS.join(', ')}`);
  }
  const seed = int('--seed', c.seed, 0, 0xffffffff, 'seed');
  const burstPages = int('--burst-pages', c.burstPages, 1, MAX_INSN_PAGES, `burst size (at most the ring's ${KVM_DIRTY_RING_RSVD_ENTRIES} reserved entries)`);
  const burstPercent = int('--burst-percent', c.burstPercent, 0, 100, 'burst share');
  return {
    log,
    clearChunkPages,
    initiallySet: c.initiallySet === true,
    deviceWriters,
    deviceIntervalUs,
    // Devices on a ring VM need the bitmap too (as arm64 offers it), unless told otherwise.
    ringWithBitmap: log === 'ring' && (input.ringWithBitmap === undefined ? deviceWriters > 0 : input.ringWithBitmap === true),
    vcpus,
    memoryBytes,
    memslots,
    ringEntries,
    workload: c.workload as WorkloadKind,
    burstPages,
    burstPercent,
    seed,
    pages,
  };
}

export function validateRunConfig(input: Partial<RunConfig>): RunConfig {
  const c = { ...RUN_DEFAULTS, seed: input.seed ?? randomSeed(), ...stripUndefined(input) };
  const { pages, ...guest } = validateGuestShape(c, input);
  const iterations = int('--iterations', c.iterations, 1, 1_000_000, 'iteration count');
  const intervalMs = int('--interval-ms', c.intervalMs, 1, 3_600_000, 'interval');
  const harvestIntervalMs = int('--harvest-interval-ms', c.harvestIntervalMs, 1, 3_600_000, 'harvest interval');
  const writesPerIteration = int('--writes-per-iteration', c.writesPerIteration, 0, 1e9, 'writes per iteration');
  const selfReap = c.selfReap === true;
  if (selfReap && guest.log !== 'ring') {
    throw new ConfigError('--self-reap', 'on', 'EINVAL', 'self-reap harvests dirty rings: it needs --log ring');
  }
  if (selfReap && ((c.mutants >>> 0) & Mutant.HARVEST_SKIPS_ENTRY) !== 0) {
    throw new ConfigError('--mutant', 'harvest-skips-entry', 'EINVAL', 'that mutant lives in the userspace collector, which self-reap replaces');
  }
  // Page write-tracking (src/harness/page-track-config.ts).
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
    selfReap,
    ...track.options,
  };
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 0x100000000) >>> 0;
}

/** `o` without its undefined fields, so that spreading it over defaults keeps them. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Parse "64MiB", "1GiB", "4096", "512KiB", "2G" into bytes. */
export function parseSize(param: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)$/i.exec(text.trim());
  if (!m) throw new ConfigError(param, text, 'EINVAL', 'expected a size like 64MiB, 1GiB or 4096');
  const unit = (m[2] ?? '').toUpperCase();
  const scale = unit === 'K' ? 2 ** 10 : unit === 'M' ? 2 ** 20 : unit === 'G' ? 2 ** 30 : unit === 'T' ? 2 ** 40 : 1;
  const bytes = Number(m[1]) * scale;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(param, text, 'EINVAL', 'size must be a whole number of bytes');
  return bytes;
}
