/** The guest sizes a caller asks free runs to draw from (`dirtyring stress --memory`, `stress({ memory })`). */
import { ConfigError } from '../../base/config-error.js';
import { parseSize } from '../../harness/run-config.js';
import type { StressMode } from '../stress-mode.js';
import { MAX_FREE_MEMORY_MIB } from './free-scenario.js';

const MiB = 1024 * 1024;

/**
 * SIZE[,SIZE...] as MiB counts: whole MiB each, from 1MiB to MAX_FREE_MEMORY_MIB, for a
 * campaign with free runs. `param` names the option in errors (EINVAL).
 */
export function freeMemorySizes(text: string, modes: readonly StressMode[], param: string): readonly number[] {
  if (!modes.includes('free')) throw new ConfigError(param, text, 'EINVAL', 'free runs only: controlled scenarios have guests of their own shapes');
  return text.split(',').map((part) => {
    const bytes = parseSize(param, part);
    if (bytes < MiB || bytes % MiB !== 0) throw new ConfigError(param, part, 'EINVAL', "a free run's guest is a whole number of MiB, at least 1MiB");
    if (bytes / MiB > MAX_FREE_MEMORY_MIB) {
      throw new ConfigError(param, part, 'EINVAL', `at most ${MAX_FREE_MEMORY_MIB}MiB: a free run may put its whole guest in one memslot (at most 2 GiB), with a few pages more`);
    }
    return bytes / MiB;
  });
}
