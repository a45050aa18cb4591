/**
 * The harvester contract: what a user's dirty-page harvester is, and what it sees. It sees what
 * userspace sees on real KVM — each vCPU's ring as its array of 16-byte `struct kvm_dirty_gfn`
 * in shared memory, the dirty-logging ioctls with KVM's results and errnos, the memslots, vCPU
 * kicks and the vCPUs stalled on KVM_EXIT_DIRTY_RING_FULL — never the emulator's internals.
 *
 * This module depends on nothing of the library but ConfigError, so that a harvester module can
 * import `defineHarvester` cheaply in any thread. The brand is a registered symbol: a harvester
 * defined against one copy of the library is recognised by another (the CLI's, a worker's).
 */

import { ConfigError } from '../base/config-error.js';

/** The logging interface a harvester drives. */
export type HarvesterLog = 'ring' | 'bitmap' | 'clear';
export const HARVESTER_LOGS: readonly HarvesterLog[] = ['ring', 'bitmap', 'clear'];

/** struct kvm_dirty_gfn flags (include/uapi/linux/kvm.h). */
export const KVM_DIRTY_GFN_F_DIRTY = 1;
export const KVM_DIRTY_GFN_F_RESET = 2;
/** Bytes of one ring entry: flags u32 @0, slot u32 @4, offset u64 @8. */
export const KVM_DIRTY_GFN_BYTES = 16;

export interface MemslotInfo {
  /** The slot as ioctls and ring entries encode it: (as_id << 16) | id. */
  readonly slot: number;
  readonly id: number;
  /** Address space: 0, or 1 for SMRAM. */
  readonly asId: number;
  readonly baseGfn: number;
  readonly pageCount: number;
}

/** One vCPU's ring mapping (mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET). */
export interface DirtyRingMapping {
  readonly vcpu: number;
  /** Entries in the ring: a power of two. */
  readonly entryCount: number;
  /** The mapping's memory: `entryCount` little-endian `struct kvm_dirty_gfn` from `byteOffset`, the bytes the kernel reads. */
  readonly buffer: SharedArrayBuffer;
  /** Where the ring starts in `buffer`: 0, unless the rings are placed in a WebAssembly harvester's memory. */
  readonly byteOffset: number;
  /**
   * The free-running index of the ring's first push: 0 on a fresh KVM ring. Stress runs may
   * start a ring elsewhere (below 2^32, say) to exercise a harvester's index arithmetic.
   */
  readonly startIndex: number;
  /** Entry `index`'s flags, load-acquire (`index` is free-running; the accessor masks it). */
  loadFlagsAcquire(index: number): number;
  /**
   * Entry `index`'s flags, a plain load (READ_ONCE): what a harvester written before the 2022
   * ordering fixes does. Under a weak memory model the payload read after it may be stale.
   */
  loadFlagsPlain(index: number): number;
  /** Entry `index`'s slot, a plain read: valid once loadFlagsAcquire has seen DIRTY. */
  readSlot(index: number): number;
  /** Entry `index`'s offset (u64; page offsets stay below 2^53), a plain read. */
  readOffset(index: number): number;
  /** flags = RESET, store-release: the entry goes back to KVM_RESET_DIRTY_RINGS. */
  storeResetRelease(index: number): void;
  /** flags = `value`, a plain store: what a misbehaving harvester may do (the kernel copes). */
  storeFlagsPlain(index: number, value: number): void;
}

/**
 * Int32 words a harvester's threads share (`kvm.shared`), zero at the start of a run. Each
 * accessor names its ordering: `Relaxed` and `Plain` order nothing; `storeRelease` makes every
 * earlier access of the thread visible before the store; `loadAcquire` that reads a release
 * store sees everything before it. In controlled runs under a weak `--memory-model` a relaxed
 * or plain hand-off may be seen without what came before it.
 */
export interface SharedWords {
  readonly length: number;
  loadRelaxed(i: number): number;
  loadAcquire(i: number): number;
  loadPlain(i: number): number;
  storeRelaxed(i: number, value: number): void;
  storeRelease(i: number, value: number): void;
  storePlain(i: number, value: number): void;
}

/**
 * The harvester's view of the VM. The ioctls throw a `KvmError` on failure, whose `errno`
 * ('EINVAL', ...) and `code` (−22, ...) are what the real ioctl returns for the same arguments.
 */
export interface HarvesterKvm {
  readonly log: HarvesterLog;
  readonly vcpuCount: number;
  readonly memslots: readonly MemslotInfo[];
  /** The memory the rings are mapped in when the harvester is WebAssembly (HarvesterDefinition.ringSpace), else null. */
  readonly ringMemory: WebAssembly.Memory | null;
  /** --log ring: a vCPU's ring mapping. */
  ring(vcpu: number): DirtyRingMapping;
  /** KVM_RESET_DIRTY_RINGS: returns the number of entries reset. */
  resetDirtyRings(): number;
  /** KVM_GET_DIRTY_LOG of `slot` into the harvester's own buffer (one bit per page, u32 words). */
  getDirtyLog(slot: number, bitmap: Uint32Array): void;
  /** KVM_CLEAR_DIRTY_LOG: clear (and re-protect) the set bits of `bitmap`, bit 0 = `firstPage`. */
  clearDirtyLog(slot: number, firstPage: number, numPages: number, bitmap: Uint32Array): void;
  /** This thread of the harvester: 0 .. threads − 1 (0 when it runs on the harness's thread). */
  readonly thread: number;
  /** The harvester's threads (`threads` of its definition; 1 on the harness's thread). */
  readonly threads: number;
  /**
   * Wait until every thread of the harvester has reached its barrier in this collection (a
   * full fence among them: what one did before it, every other sees after it). A no-op with one thread.
   */
  barrier(): void;
  /** Words shared by the harvester's threads, with ordered accessors (see SharedWords). */
  readonly shared: SharedWords;
  /** Kick a vCPU out of guest mode (it re-enters at once). */
  kick(vcpu: number): void;
  /**
   * Report one page the harvester collected and considers safe to read: the harness copies it
   * at once and hands it to the oracle. A ring page is safe once the reset that consumed its
   * entry has returned; a bitmap page once GET (legacy) or its CLEAR has returned.
   */
  report(slot: number, offset: number): void;
}

/** One collection the harness asks for. */
export interface Collection {
  /**
   * Every vCPU is paused: the iteration's last collection, after which every page written in
   * the iteration must have been reported.
   */
  readonly final: boolean;
  /**
   * vCPUs stalled on KVM_EXIT_DIRTY_RING_FULL that this collection must free (harvest their
   * rings and reset); the harness resumes them when `collect` returns.
   */
  readonly ringFull: readonly number[];
}

export interface HarvesterInstance {
  collect(collection: Collection): void;
}

export interface HarvesterDefinition {
  readonly name: string;
  readonly log: HarvesterLog;
  /**
   * Run on this many threads of its own (1..8), racing the vCPU threads: every collection runs
   * `collect` on each of them at once and ends when all have returned (free runs, run and
   * migrate). Omitted: on the harness's thread (and in controlled runs, the userspace participant).
   */
  readonly threads?: number;
  /** Called once per run (per thread), with that run's VM: the harvester's private state lives in what it returns. */
  create(kvm: HarvesterKvm): HarvesterInstance;
  /**
   * Where mmap places the rings in the harvester's address space, asked once per VM (ring
   * logging only): a WebAssembly harvester's linear memory (src/harvester/wasm/). Omitted: each
   * ring is a SharedArrayBuffer of its own.
   */
  readonly ringSpace?: (vcpus: number, ringBytes: number) => { readonly memory: WebAssembly.Memory; readonly byteOffset: number };
}

/** Harvester threads beyond this are a typing error, not a design (the machine runs the vCPUs too). */
export const MAX_HARVESTER_THREADS = 8;

const BRAND = Symbol.for('dirtyring.harvester');
/**
 * On a C harvester's definition: whether its module declares threads (DIRTYRING_THREADS). One that
 * does not has statics written for one thread, so it refuses more (harvester-threads.ts).
 */
export const DECLARES_THREADS = Symbol.for('dirtyring.harvester.declaresThreads');

/**
 * Check and mark a harvester definition: the value a harvester module exports. A bad field is a
 * ConfigError naming it (`defineHarvester.log pml: EINVAL, ...`).
 */
export function defineHarvester(def: HarvesterDefinition): HarvesterDefinition {
  const bad = (field: string, value: unknown, why: string): never => {
    throw new ConfigError(`defineHarvester.${field}`, value, 'EINVAL', why);
  };
  if (def === null || typeof def !== 'object') bad('definition', def, 'must be an object { name, log, create }');
  if (typeof def.name !== 'string' || def.name === '') bad('name', def.name, 'must be a non-empty string');
  if (!HARVESTER_LOGS.includes(def.log)) bad('log', def.log, `must be one of ${HARVESTER_LOGS.join(', ')}`);
  const t = def.threads;
  if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_HARVESTER_THREADS)) bad('threads', t, `must be an integer in 1..${MAX_HARVESTER_THREADS}`);
  if (typeof def.create !== 'function') bad('create', typeof def.create, 'must be a function (kvm) => ({ collect(collection) })');
  return Object.freeze({ ...def, [BRAND]: true });
}

export function isHarvesterDefinition(v: unknown): v is HarvesterDefinition {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
}
