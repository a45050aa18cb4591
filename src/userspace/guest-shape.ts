/**
 * The guest a VMM sets up — its vCPUs, memory, memslots, DMA devices and dirty-logging
 * interface — and the validation of those parameters, shared by every command that starts a
 * guest (`run`, `migrate`, `dirty-rate`). Every error names the parameter as the CLI spells it
 * and the errno the kernel would give for the equivalent ioctl input.
 */
import { DIRTY_GFN_BYTES, KVM_DIRTY_RING_MAX_ENTRIES, KVM_DIRTY_RING_RSVD_ENTRIES, KVM_MEM_MAX_NR_PAGES, PAGE_SIZE, U32_RANGE } from '../abi/constants.js';
import { isKvmError } from '../abi/errno.js';
import { ConfigError } from '../base/config-error.js';
import { MAX_SEED, int } from '../base/config-values.js';
import { GiB } from '../base/units.js';
import { MAX_INSN_PAGES } from '../guest/instruction.js';
import { WORKLOAD_KINDS, type WorkloadKind } from '../guest/workloads.js';
import { validateRingBytes } from '../kernel/dirty-ring.js';
import { MEMSLOT_TABLE_ENTRIES } from '../kernel/memslot-layout.js';
import { LOG_MODES, type LogMode } from './log-collectors.js';

/** The emulator runs one worker thread per vCPU; beyond this the machine only thrashes. */
export const MAX_GUEST_VCPUS = 64;
export const MAX_DEVICE_WRITERS = 8;
/** Each memslot is one SharedArrayBuffer. */
export const MAX_SLOT_BYTES = 2 ** 31;
/** KVM_CLEAR_DIRTY_LOG takes whole u64 words of the bitmap: first_page and num_pages are multiples of 64. */
export const CLEAR_CHUNK_ALIGN_PAGES = 64;
/** Longest pause a device thread may take between two writes (1 s): longer is an idle device. */
const MAX_DEVICE_INTERVAL_US = 1_000_000;

/** The guest, its memory and the logging interface: what run and migrate both configure. */
export interface GuestShape {
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
   * their writes reach a bitmap, read last; without it they are lost and the checks must say so.
   */
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
 * Ring size in entries, validated by the kernel's own rules on entries × 16 bytes. The size
 * reaches KVM_ENABLE_CAP as a u32 of bytes, so a count whose bytes do not fit 32 bits would be
 * truncated there (268435712 entries are 2^32 + 4096 bytes: a 256-entry ring); such a count is
 * refused, with what the truncation would have made of it, rather than run with a ring of
 * another size.
 */
export function validateRingEntries(entries: unknown, param = '--ring-entries'): number {
  if (typeof entries !== 'number' || !Number.isInteger(entries) || entries < 0) {
    throw new ConfigError(param, entries, 'EINVAL', 'ring size must be a positive integer number of entries');
  }
  const maxEntries = `rings hold at most ${KVM_DIRTY_RING_MAX_ENTRIES} entries (1 MiB)`;
  if (!Number.isSafeInteger(entries * DIRTY_GFN_BYTES)) throw new ConfigError(param, entries, 'E2BIG', maxEntries);
  if (entries * DIRTY_GFN_BYTES >= U32_RANGE) throw truncatedRing(param, entries, maxEntries);
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

/**
 * A ring whose bytes pass 2^32: what KVM_ENABLE_CAP's u32 would make of it. If the kernel
 * refuses the truncated size, its errno and reason; if it would accept it, E2BIG — the ring
 * asked for is over the maximum, and the kernel would silently build another.
 */
function truncatedRing(param: string, entries: number, maxEntries: string): ConfigError {
  const bytes = entries * DIRTY_GFN_BYTES;
  const truncated = Number(BigInt(bytes) % BigInt(U32_RANGE));
  const head = `${entries} entries are ${bytes} bytes, which the u32 size of KVM_ENABLE_CAP truncates to ${truncated}`;
  try {
    validateRingBytes(truncated);
  } catch (e) {
    if (!isKvmError(e)) throw e;
    return new ConfigError(param, entries, e.errno, `${head}, and the kernel refuses that (${e.detail}); ${maxEntries}`);
  }
  return new ConfigError(param, entries, 'E2BIG', `${head} (a ${truncated / DIRTY_GFN_BYTES}-entry ring, not the one asked for); ${maxEntries}`);
}

/** The logging interface named by `--log`. */
export function validateLogMode(value: unknown): LogMode {
  if (!(LOG_MODES as readonly unknown[]).includes(value)) {
    throw new ConfigError('--log', value, 'EINVAL', `log must be one of ${LOG_MODES.join(', ')}`);
  }
  return value as LogMode;
}

/** The workload named by `--workload`. */
export function validateWorkload(value: unknown): WorkloadKind {
  if (!(WORKLOAD_KINDS as readonly unknown[]).includes(value)) {
    throw new ConfigError('--workload', value, 'EINVAL', `workload must be one of ${WORKLOAD_KINDS.join(', ')}`);
  }
  return value as WorkloadKind;
}

/** Guest memory in bytes: whole pages, given as a number. Returns the page count. */
function validateMemoryPages(memoryBytes: unknown): number {
  if (typeof memoryBytes !== 'number' || !Number.isSafeInteger(memoryBytes) || memoryBytes <= 0) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', 'memory size must be a positive number of bytes');
  }
  if (memoryBytes % PAGE_SIZE !== 0) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', `memory size must be a multiple of ${PAGE_SIZE} bytes`);
  }
  return memoryBytes / PAGE_SIZE;
}

/** Memslots splitting `pages` guest pages into equal parts, each within a memslot's limits. */
function validateMemslots(value: unknown, pages: number, memoryBytes: number): number {
  const memslots = int('--memslots', value, 1, Math.min(MEMSLOT_TABLE_ENTRIES, pages), 'memslot count');
  const slotPages = Math.ceil(pages / memslots);
  if (slotPages * PAGE_SIZE > MAX_SLOT_BYTES || slotPages > KVM_MEM_MAX_NR_PAGES) {
    throw new ConfigError('--memory', memoryBytes, 'EINVAL', `each memslot must be at most ${MAX_SLOT_BYTES / GiB} GiB; add --memslots`);
  }
  return memslots;
}

/** Combinations the kernel would refuse, named by the flag that asks for them. */
function refuseFlagsOfOtherModes(log: LogMode, input: GuestShapeValues): void {
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
}

function validateClearChunkPages(value: unknown): number {
  const clearChunkPages = int('--clear-chunk-pages', value, CLEAR_CHUNK_ALIGN_PAGES, KVM_MEM_MAX_NR_PAGES, 'CLEAR chunk');
  if (clearChunkPages % CLEAR_CHUNK_ALIGN_PAGES !== 0) {
    throw new ConfigError('--clear-chunk-pages', clearChunkPages, 'EINVAL', `CLEAR chunks must be a multiple of ${CLEAR_CHUNK_ALIGN_PAGES} pages`);
  }
  return clearChunkPages;
}

/**
 * Validates the part of a run's or a migration's parameters that both have: `c` holds the
 * values with the defaults applied, `input` what the caller set (a flag that only fits another
 * log mode is refused only when it was asked for). Returns the valid values and the page count.
 */
export function validateGuestShape(c: GuestShapeValues, input: GuestShapeValues): GuestShape & { readonly pages: number } {
  const log = validateLogMode(c.log);
  refuseFlagsOfOtherModes(log, input);
  const clearChunkPages = validateClearChunkPages(c.clearChunkPages);
  const deviceWriters = int('--device-writers', c.deviceWriters, 0, MAX_DEVICE_WRITERS, 'device writer count');
  const deviceIntervalUs = int('--device-interval-us', c.deviceIntervalUs, 1, MAX_DEVICE_INTERVAL_US, 'device write interval');
  const vcpus = int('--vcpus', c.vcpus, 1, MAX_GUEST_VCPUS, 'vCPU count');
  const pages = validateMemoryPages(c.memoryBytes);
  const memoryBytes = pages * PAGE_SIZE;
  const memslots = validateMemslots(c.memslots, pages, memoryBytes);
  const ringEntries = validateRingEntries(c.ringEntries);
  const workload = validateWorkload(c.workload);
  const seed = int('--seed', c.seed, 0, MAX_SEED, 'seed');
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
    workload,
    burstPages,
    burstPercent,
    seed,
    pages,
  };
}
