/** `dirtyring stress --memory`: the guest sizes free runs draw from instead of their small default ones. */
import { ConfigError } from '../base/config-error.js';
import { freeMemorySizes } from '../stress/free/free-memory.js';
import type { StressMode } from '../stress/stress-mode.js';
import { checkGuestMemory } from './memory-budget.js';

const MiB = 1024 * 1024;

/**
 * --memory SIZE[,SIZE...] (free-memory.ts), not with --mutant, and the largest size within the
 * memory a campaign may use (ENOMEM, as `run --memory`).
 */
export function parseMemorySizes(v: string | undefined, modes: readonly StressMode[], hasMutants: boolean): readonly number[] | null {
  if (v === undefined) return null;
  if (hasMutants) throw new ConfigError('--memory', v, 'EINVAL', 'not used with --mutant (each mutant campaign sizes its guest to catch its bug)');
  const sizes = freeMemorySizes(v, modes, '--memory');
  const largest = Math.max(...sizes);
  checkGuestMemory('stress', largest * MiB, sizes.length === 1 ? v : `${largest}MiB`);
  return sizes;
}
