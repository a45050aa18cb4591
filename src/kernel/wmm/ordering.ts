/**
 * The orderings a modelled access states, named by the Linux primitive the real code uses. A
 * memory profile (model.ts) decides what each means: on x86 (TSO) every plain load already
 * acquires and every plain store releases, smp_rmb/smp_wmb only stop the compiler, and every
 * atomic read-modify-write is a locked, fully ordered instruction; on arm64 plain accesses are
 * relaxed, the fences are real barriers, and only value-returning atomics are fully ordered.
 */

/** Memory profiles of controlled runs. `sc` runs no model at all (every access is a JS Atomics op). */
export const MEMORY_MODELS = ['sc', 'x86', 'arm64'] as const;
export type MemoryModel = (typeof MEMORY_MODELS)[number];

/** The profile numbers the shadow state records (sc has none: no shadow state). */
export const WmmProfile = { X86: 1, ARM64: 2 } as const;

export function profileOf(model: MemoryModel): number {
  return model === 'x86' ? WmmProfile.X86 : WmmProfile.ARM64;
}

/** Loads and stores. */
export const Access = {
  /** A plain C access, READ_ONCE or WRITE_ONCE: untorn, otherwise unordered. */
  ONCE: 0,
  /** smp_load_acquire. */
  ACQUIRE: 1,
  /** smp_store_release. */
  RELEASE: 2,
} as const;
export type AccessOrder = (typeof Access)[keyof typeof Access];

export const Barrier = {
  /** smp_rmb: orders earlier loads before later loads. */
  RMB: 1,
  /** smp_wmb: orders earlier stores before later stores. */
  WMB: 2,
  /** smp_mb: a full fence. */
  MB: 3,
} as const;
export type BarrierKind = (typeof Barrier)[keyof typeof Barrier];

/** Atomic read-modify-writes, which always read the newest store of their location. */
export const Atomic = {
  /** set_bit, atomic_or, atomic_and: no return value, so no ordering on arm64 (locked on x86). */
  VOID: 0,
  /** xchg, cmpxchg, test_and_*, fetch_*: value-returning, fully ordered on every architecture. */
  FULL: 1,
  /** cmpxchg_relaxed and friends: atomic, but unordered on arm64. */
  RELAXED: 2,
} as const;
export type AtomicKind = (typeof Atomic)[keyof typeof Atomic];

/** What an event of the log records in its OP word: the kind of access, and its ordering. */
export const Op = { LOAD: 1, STORE: 2, RMW: 3, FENCE: 4 } as const;
export const OP_SHIFT = 4;

/** The ordering of an access in a word or two, for diagrams: `acquire`, `release`, `once`, `smp_wmb`... */
export function shortAccessName(kind: number, order: number): string {
  if (kind === Op.FENCE) return accessName(kind, order);
  if (kind === Op.RMW) return order === Atomic.FULL ? 'atomic' : 'atomic, relaxed';
  if (kind === Op.LOAD) return order === Access.ACQUIRE ? 'acquire' : 'once';
  return order === Access.RELEASE ? 'release' : 'once';
}

export function accessName(kind: number, order: number): string {
  if (kind === Op.FENCE) return order === Barrier.RMB ? 'smp_rmb' : order === Barrier.WMB ? 'smp_wmb' : 'smp_mb';
  if (kind === Op.RMW) return order === Atomic.FULL ? 'atomic (full)' : order === Atomic.VOID ? 'atomic (void)' : 'atomic (relaxed)';
  if (kind === Op.LOAD) return order === Access.ACQUIRE ? 'load-acquire' : 'READ_ONCE';
  return order === Access.RELEASE ? 'store-release' : 'WRITE_ONCE';
}
