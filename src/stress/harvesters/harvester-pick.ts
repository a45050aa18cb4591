/**
 * The harvester of a generated scenario (free or controlled) when the campaign does not fix
 * one: mostly the standard harvester, and some runs of the deliberately awkward variants a
 * real userspace may be (an unaligned CLEAR, a ring harvester that overwrites entries).
 */
import { type Prng } from '../../base/prng.js';
import type { HarvesterVariant } from './harvester-variants.js';
import type { LogMode } from '../../userspace/log-collectors.js';
import { percent } from '../draw.js';

/** Percent of clear-log runs with the unaligned-clear harvester. */
const UNALIGNED_CLEAR_PERCENT = 30;

/**
 * One rng draw for a clear or ring log, none for bitmap: generated scenarios depend on this
 * sequence, so the same seed must keep drawing the same way.
 */
export function pickHarvester(rng: Prng, log: LogMode, hostileWrapPercent: number): HarvesterVariant {
  if (log === 'clear') return percent(rng, UNALIGNED_CLEAR_PERCENT) ? 'unaligned-clear' : 'standard';
  if (log === 'ring') return percent(rng, hostileWrapPercent) ? 'hostile-wrap' : 'standard';
  return 'standard';
}
