/** The dirty ring's size as KVM_ENABLE_CAP(DIRTY_LOG_RING[_ACQ_REL]) gives it, validated as the kernel does. */
import { DIRTY_GFN_BYTES, KVM_DIRTY_RING_MAX_BYTES, KVM_DIRTY_RING_RSVD_ENTRIES, PAGE_SIZE, U32_BITS } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { isPowerOfTwo } from '../base/assert.js';
import { showArg } from './ioctl-args.js';

/**
 * Validate KVM_ENABLE_CAP(DIRTY_LOG_RING[_ACQ_REL]) args[0] exactly as the kernel does, and
 * return the ring size in bytes. The argument is a u64 that the kernel passes on as u32, so
 * it is truncated first (2^32 + 4096 enables a 4096-byte ring, as observed on 6.18).
 */
export function validateRingBytes(args0: number | bigint, reservedEntries = KVM_DIRTY_RING_RSVD_ENTRIES): number {
  const size = typeof args0 === 'bigint' ? Number(BigInt.asUintN(U32_BITS, args0)) : truncateU32(args0);
  if (!isPowerOfTwo(size)) {
    throw new KvmError('EINVAL', `ring size must be a power of two (got ${size} bytes)`, 'size');
  }
  if (size < reservedEntries * DIRTY_GFN_BYTES || size < PAGE_SIZE) {
    throw new KvmError(
      'EINVAL',
      `ring size must be at least ${Math.max(PAGE_SIZE, reservedEntries * DIRTY_GFN_BYTES)} bytes (got ${size})`,
      'size',
    );
  }
  if (size > KVM_DIRTY_RING_MAX_BYTES) {
    throw new KvmError('E2BIG', `ring size must be at most ${KVM_DIRTY_RING_MAX_BYTES} bytes (got ${size})`, 'size');
  }
  return size;
}

function truncateU32(n: number): number {
  if (!Number.isFinite(n) || n < 0 || !Number.isInteger(n)) {
    throw new KvmError('EINVAL', `ring size must be a non-negative integer (got ${showArg(n)})`, 'size');
  }
  return Number(BigInt.asUintN(U32_BITS, BigInt(n)));
}
