import { KvmError } from '../../src/abi/errno.js';

/** The errno name a KVM ioctl call fails with, or null when it succeeds. */
export function errnoOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof KvmError) return e.errno;
    throw e;
  }
}
