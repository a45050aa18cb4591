/**
 * The pieces every command's parameter validation shares: an integer in a range (or EINVAL
 * naming the parameter), a random seed when none is given, and the caller's values spread over
 * the defaults without letting an undefined field erase one.
 */
import { ConfigError } from './config-error.js';

/** Seeds are u32: the PRNG streams are derived from 32 bits. */
export const MAX_SEED = 0xffffffff;

/** An integer parameter in [min, max], or EINVAL naming it. */
export function int(param: string, value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(param, value, 'EINVAL', `${what} must be an integer`);
  if (value < min || value > max) throw new ConfigError(param, value, 'EINVAL', `${what} must be between ${min} and ${max}`);
  return value;
}

/** A seed for a run that was given none (reported, so that the run can be reproduced). */
export function randomSeed(): number {
  return Math.floor(Math.random() * (MAX_SEED + 1)) >>> 0;
}

/** `o` without its undefined fields, so that spreading it over defaults keeps them. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
