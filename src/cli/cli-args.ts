/** Argument helpers shared by the migrate and dirty-rate commands: integers, mutants, on/off. */
import { ConfigError } from '../harness/run-config.js';
import { MUTANT_NAMES } from '../kernel/mutants.js';

/** An integer option, or undefined when absent; anything else is EINVAL naming the option. */
export function intOption(param: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected an integer');
  return Number(v);
}

export function onOffOption(param: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new ConfigError(`--${param}`, v, 'EINVAL', 'expected on or off');
  return v === 'on';
}

export function mutantOption(v: string | undefined): number {
  let mutants = 0;
  if (!v) return 0;
  for (const name of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const bit = MUTANT_NAMES[name];
    if (bit === undefined) {
      throw new ConfigError('--mutant', name, 'EINVAL', `unknown mutant (known: ${Object.keys(MUTANT_NAMES).join(', ')})`);
    }
    mutants |= bit;
  }
  return mutants;
}
