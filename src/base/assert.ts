/**
 * Invariant assertions, in two tiers (TigerBeetle's style):
 *  - `assert` is always on: use it where the check costs nothing next to the work around it
 *    (a constructor, a layout size, an ioctl argument already in a register);
 *  - `debugChecks` gates the costly ones (a walk over a ring, a recount of a bitmap). Tests turn
 *    it on with DIRTYRING_DEBUG=1 (Node: the environment, which worker threads inherit) or
 *    `globalThis.DIRTYRING_DEBUG = true` before the first import (a browser page or worker).
 * A failed assertion is a bug of the emulator itself, never of its input: bad input gets a
 * KvmError or a ConfigError naming the parameter.
 */

export class AssertionError extends Error {
  constructor(message: string) {
    super(`dirtyring invariant violated: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

function readDebugFlag(): boolean {
  const g = globalThis as { DIRTYRING_DEBUG?: unknown; process?: { env?: Record<string, string | undefined> } };
  if (g.DIRTYRING_DEBUG === true || g.DIRTYRING_DEBUG === '1') return true;
  return g.process?.env?.['DIRTYRING_DEBUG'] === '1';
}

/** Whether the costly invariant checks run (read once per thread, at load). */
export const debugChecks: boolean = readDebugFlag();

/** The emulator stores u64 values as two u32 halves; that needs a little-endian host. */
export function assertLittleEndian(): void {
  const probe = new Uint8Array(new Uint32Array([1]).buffer);
  if (probe[0] !== 1) throw new Error('dirtyring needs a little-endian host (kvm_dirty_gfn layout)');
}

/** `n` is a power of two (ring sizes, TLB sets, wire slots). */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
