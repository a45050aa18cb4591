/**
 * Bad input to a command or a public function: names the parameter, the value, the errno KVM
 * would give for the same mistake, and why. The CLI prints it as one line and exits 2.
 */
import type { ErrnoName } from '../abi/errno.js';

export class ConfigError extends Error {
  constructor(
    readonly param: string,
    readonly value: unknown,
    readonly errno: ErrnoName,
    readonly reason: string,
  ) {
    super(`${param} ${String(value)}: ${errno}, ${reason}`);
    this.name = 'ConfigError';
  }
}
