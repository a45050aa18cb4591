/**
 * The guest-pacing parameters that `migrate` and `dirty-rate` share: how fast each vCPU dirties
 * pages, over how much memory, after how long a warm-up.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { ConfigError } from '../../base/config-error.js';
import { int } from '../../base/config-values.js';

/** A guest rate far beyond what a worker thread can write (about 1 TiB/s): the bound only catches typos. */
export const MAX_DIRTY_RATE_MIBS = 1_000_000;
/** One hour, in ms: the longest warm-up accepted. */
export const MAX_WARMUP_MS = 3_600_000;

/** Page writes per second per vCPU, as MiB/s (0: as fast as the thread can). */
export function validateDirtyRateMiBs(value: unknown): number {
  return int('--dirty-rate-mibs', value, 0, MAX_DIRTY_RATE_MIBS, 'guest dirty rate (MiB/s per vCPU)');
}

export function validateWarmupMs(value: unknown): number {
  return int('--warmup-ms', value, 0, MAX_WARMUP_MS, 'warm-up');
}

/** Bytes of guest memory the workload writes, from the start of memory (0: all of it). */
export function validateWorkingSet(value: unknown, memoryBytes: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError('--working-set', value, 'EINVAL', 'working set must be a number of bytes');
  }
  if (value % PAGE_SIZE !== 0 || value > memoryBytes) {
    throw new ConfigError('--working-set', value, 'EINVAL', `working set must be whole pages, at most --memory (${memoryBytes})`);
  }
  return value;
}
