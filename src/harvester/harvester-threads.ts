/**
 * Where a harvester runs, as the caller chooses it (`--harvester-threads N`, `harvesterThreads`):
 * N threads of its own, or 0 for the harness's thread — overriding the module's `threads`.
 */
import { ConfigError } from '../base/config-error.js';
import { DECLARES_THREADS, type HarvesterDefinition, MAX_HARVESTER_THREADS, defineHarvester } from './contract.js';

/** The definition run on `threads` threads of its own (0: the harness's thread; null: as defined). */
export function withHarvesterThreads(def: HarvesterDefinition, threads: number | null, param = '--harvester-threads'): HarvesterDefinition {
  if (threads === null) return def;
  if (threads > 1 && (def as unknown as Record<symbol, unknown>)[DECLARES_THREADS] === false) {
    throw new ConfigError(param, String(threads), 'EINVAL', `${def.name} declares no threads: a C harvester says how many it runs on with DIRTYRING_THREADS(n) (include/dirtyring.h)`);
  }
  const { threads: _defined, ...rest } = def;
  return defineHarvester(threads === 0 ? rest : { ...rest, threads });
}

/** `--harvester-threads` (`param`): 0..MAX_HARVESTER_THREADS, only with a harvester. */
export function parseHarvesterThreads(param: string, v: string | number | undefined, harvesterGiven: boolean): number | null {
  if (v === undefined) return null;
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > MAX_HARVESTER_THREADS) {
    throw new ConfigError(param, String(v), 'EINVAL', `expected an integer in 0..${MAX_HARVESTER_THREADS} (0: the harness's thread)`);
  }
  if (!harvesterGiven) throw new ConfigError(param, String(v), 'EINVAL', 'only with a harvester (--harvester FILE)');
  return n;
}
