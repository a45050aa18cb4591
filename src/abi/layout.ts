/**
 * The one place where shared-memory layouts are defined. Every SharedArrayBuffer the emulator
 * shares between threads is described here; other modules index only through these names.
 *
 * A block is an Int32 region (words touched with Atomics when another thread reads them)
 * followed by a Float64 region (counters and times written by one thread with plain stores
 * and read by others as statistics, or after an Atomics hand-off that orders them).
 */
import { DIRTY_GFN_BYTES } from './constants.js';

export interface BlockLayout<W extends string, F extends string> {
  readonly name: string;
  readonly words: Readonly<Record<W, number>>;
  readonly wordCount: number;
  readonly floats: Readonly<Record<F, number>>;
  readonly floatCount: number;
  /** Byte offset of the Float64 region (8-byte aligned). */
  readonly floatByteOffset: number;
  readonly bytes: number;
}

function defineBlock<const W extends string, const F extends string>(
  name: string,
  words: readonly W[],
  floats: readonly F[],
): BlockLayout<W, F> {
  const w = Object.fromEntries(words.map((k, i) => [k, i])) as Record<W, number>;
  const f = Object.fromEntries(floats.map((k, i) => [k, i])) as Record<F, number>;
  const floatByteOffset = Math.ceil((words.length * 4) / 8) * 8;
  return {
    name,
    words: w,
    wordCount: words.length,
    floats: f,
    floatCount: floats.length,
    floatByteOffset,
    bytes: floatByteOffset + floats.length * 8,
  };
}

/** Typed views over one block in a SharedArrayBuffer. */
export class SharedBlock<W extends string, F extends string> {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly buffer: SharedArrayBuffer;

  constructor(
    readonly layout: BlockLayout<W, F>,
    buffer?: SharedArrayBuffer,
    byteOffset = 0,
  ) {
    this.buffer = buffer ?? new SharedArrayBuffer(layout.bytes);
    if (this.buffer.byteLength < byteOffset + layout.bytes) {
      throw new RangeError(`${layout.name}: buffer of ${this.buffer.byteLength} B is too small`);
    }
    this.i32 = new Int32Array(this.buffer, byteOffset, layout.wordCount);
    this.f64 = new Float64Array(this.buffer, byteOffset + layout.floatByteOffset, layout.floatCount);
  }
}

// ---------------------------------------------------------------------------------------------
// struct kvm_dirty_gfn, viewed as four u32 words (little-endian hosts only; checked at startup).

export const DirtyGfnWords = {
  /** flags u32 @0: accessed only with Atomics (release on publish, acquire on read). */
  FLAGS: 0,
  /** slot u32 @4: (as_id << 16) | id. */
  SLOT: 1,
  /** offset u64 @8, low half. */
  OFFSET_LO: 2,
  /** offset u64 @12, high half. */
  OFFSET_HI: 3,
} as const;
export const DIRTY_GFN_WORDS = DIRTY_GFN_BYTES / 4;

// ---------------------------------------------------------------------------------------------
// The VM: capabilities, locks, counters shared by every thread.

export const VmLayout = defineBlock(
  'vm',
  [
    /** Dirty ring size in bytes; 0 = no ring (bitmap logging). */
    'RING_BYTES',
    /** 1 when the ring was enabled through KVM_CAP_DIRTY_LOG_RING_ACQ_REL. */
    'RING_ACQ_REL',
    /** 1 after KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP. */
    'RING_WITH_BITMAP',
    /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 flags (1 enable, 2 initially set). */
    'MANUAL_PROTECT',
    /** vCPUs created (kvm->created_vcpus). */
    'CREATED_VCPUS',
    /** The mmu_lock (a futex-style mutex word: 0 free, 1 held, 2 held with waiters). */
    'MMU_LOCK',
    /** The slots_lock mutex word. */
    'SLOTS_LOCK',
    /** Bumped (and notified) whenever a vCPU changes state; userspace waits on it. */
    'DOORBELL',
    /** Memslot generation, bumped on every memslot change. */
    'MEMSLOTS_GEN',
    /** Bitmask of enabled mutants (known protocol bugs, see src/harness/mutants.ts). */
    'MUTANTS',
    /** Kernel WARN count (e.g. a push into a full ring, a write with no vCPU and no bitmap). */
    'WARNINGS',
  ],
  [
    'MMU_LOCK_ACQUIRES',
    'MMU_LOCK_HOLD_TOTAL_NS',
    'MMU_LOCK_HOLD_MAX_NS',
    'SLOTS_LOCK_HOLD_TOTAL_NS',
    'RESET_CALLS',
    'ENTRIES_RESET',
    /** Coalesced reset batches skipped because their slot or offset was invalid. */
    'RESET_BATCHES_SKIPPED',
    /** Pages re-protected by reset, GET or CLEAR. */
    'PAGES_REPROTECTED',
    'TLB_FLUSHES',
    'TLB_FLUSH_WAIT_NS',
    /** Accesses that a correct kernel never makes (e.g. an out-of-bounds rmap index). */
    'KERNEL_BUGS',
    /** mmu_lock hold per ioctl kind: total and longest single hold, in ns. */
    'MMU_HOLD_GET_TOTAL_NS',
    'MMU_HOLD_GET_MAX_NS',
    'MMU_HOLD_CLEAR_TOTAL_NS',
    'MMU_HOLD_CLEAR_MAX_NS',
    'MMU_HOLD_RESET_TOTAL_NS',
    'MMU_HOLD_RESET_MAX_NS',
    'GET_CALLS',
    'CLEAR_CALLS',
    /** Writes made with no running vCPU (device/DMA) that were logged in a bitmap. */
    'NO_VCPU_WRITES_LOGGED',
    /** Writes made with no running vCPU that nothing could log (ring VM without bitmap). */
    'NO_VCPU_WRITES_LOST',
  ],
);
export type VmBlock = SharedBlock<keyof typeof VmLayout.words, keyof typeof VmLayout.floats>;

// ---------------------------------------------------------------------------------------------
// One vCPU: the kernel's private ring indices, requests and mode, plus the userspace
// vCPU-thread control words (QEMU's side of the vCPU thread) and statistics.

export const VcpuLayout = defineBlock(
  'vcpu',
  [
    'VCPU_ID',
    /** OUTSIDE_GUEST_MODE / IN_GUEST_MODE (vcpu->mode). */
    'MODE',
    /** Pending requests, a bitmask of VcpuRequest (vcpu->requests). */
    'REQUESTS',
    /** ring->dirty_index: written by the vCPU thread only. */
    'DIRTY_INDEX',
    /** ring->reset_index: written by KVM_RESET_DIRTY_RINGS in the caller's thread. */
    'RESET_INDEX',
    /** What userspace wants this vCPU thread to do: VcpuControl. */
    'CONTROL',
    /** Bumped by userspace to wake the vCPU thread (resume after a stall, new control). */
    'WAKE',
    /** What the vCPU thread is doing: VcpuState. */
    'STATE',
    /** The last exit reason KVM_RUN returned. */
    'EXIT_REASON',
    /** 1 when an instruction was interrupted by an exit and will be retried on re-entry. */
    'PENDING_VALID',
    /** The value the pending instruction will store (its "register"), i.e. an iteration. */
    'PENDING_VALUE',
  ],
  [
    /** gfn of the pending instruction's page (exact up to 2^53). */
    'PENDING_GFN',
    'INSTRUCTIONS',
    'STORES',
    'FAULTS',
    'SPURIOUS_FAULTS',
    'PUSHES',
    'RING_FULL_EXITS',
    'INTR_EXITS',
    'PREEMPTIONS',
    'STALL_NS',
    'STALL_MAX_NS',
    'TLB_FLUSHES',
    'RUN_NS',
  ],
);
export type VcpuBlock = SharedBlock<keyof typeof VcpuLayout.words, keyof typeof VcpuLayout.floats>;

/** vcpu->mode. */
export const VcpuMode = { OUTSIDE_GUEST: 0, IN_GUEST: 1 } as const;

/** Bits of the REQUESTS word. */
export const VcpuRequest = {
  /** Leave guest mode and return from KVM_RUN (a signal: -EINTR). */
  KICK: 1 << 0,
  /** Flush the software TLB before the next guest instruction. */
  TLB_FLUSH: 1 << 1,
  /** Memslots changed: drop cached slot lookups. */
  MEMSLOTS_UPDATED: 1 << 2,
} as const;

/** CONTROL word values, written by userspace. */
export const VcpuControl = { PAUSE: 0, RUN: 1, TERMINATE: 2 } as const;

/** STATE word values, written by the vCPU thread. */
export const VcpuState = {
  /** Not started yet. */
  NEW: 0,
  /** Waiting for CONTROL = RUN, outside KVM_RUN. */
  PARKED: 1,
  /** Inside the KVM_RUN loop. */
  RUNNING: 2,
  /** Returned from KVM_RUN with exit 31 and blocked until userspace wakes it. */
  RING_FULL_STALL: 3,
  /** The guest program halted (end of a finite program). */
  HALTED: 4,
  /** The thread ended (terminated or crashed). */
  DEAD: 5,
} as const;
export const VCPU_STATE_NAMES = ['new', 'parked', 'running', 'ring-full-stall', 'halted', 'dead'] as const;

// ---------------------------------------------------------------------------------------------
// A DMA device thread: writes guest memory with no running vCPU (kvm_write_guest from device
// context). Its control words mirror a vCPU thread's so that userspace drives both alike.

export const DeviceLayout = defineBlock(
  'device',
  ['DEVICE_ID', 'CONTROL', 'WAKE', 'STATE'],
  [
    'WRITES',
    /** Writes that reached a dirty bitmap. */
    'LOGGED',
    /** Writes nothing could log (a ring VM without ring-with-bitmap): the kernel WARNs. */
    'LOST',
  ],
);
export type DeviceBlock = SharedBlock<keyof typeof DeviceLayout.words, keyof typeof DeviceLayout.floats>;

/** Page-header writer ids at or above this are devices (id − DEVICE_WRITER_BASE), not vCPUs. */
export const DEVICE_WRITER_BASE = 0x10000;

// ---------------------------------------------------------------------------------------------
// The memslot table. KVM looks slots up by (as_id, id); the emulator keeps a fixed table of
// entries in shared memory so that vCPU threads see changes, and each entry owns its buffers.

/** Entries in the emulator's memslot table (not KVM's id limit, which is KVM_USER_MEM_SLOTS). */
export const MEMSLOT_TABLE_ENTRIES = 64;

export const MemslotLayout = defineBlock(
  'memslot',
  [
    /** MemslotState. */
    'STATE',
    'AS_ID',
    'ID',
    /** KVM_MEM_* flags; LOG_DIRTY_PAGES can be toggled at run time. */
    'FLAGS',
    'NPAGES',
    'BASE_GFN_LO',
    'BASE_GFN_HI',
    /** Bumped on every change of this entry. */
    'GENERATION',
    /** 1 when the slot's dirty bitmap is allocated. */
    'HAS_BITMAP',
  ],
  [],
);
export type MemslotBlock = SharedBlock<keyof typeof MemslotLayout.words, never>;
export const MemslotState = { FREE: 0, ACTIVE: 1 } as const;

// ---------------------------------------------------------------------------------------------
// Per-page structures of a memslot.

/** One SPTE word per 4 KiB page. */
export const SpteBits = {
  /** The page can be written without a fault. 0 = write-protected (or not yet mapped). */
  WRITABLE: 1 << 0,
} as const;

/**
 * Guest page header written by the guest workloads (the dirty_log_test writer): the first
 * 8 bytes hold the iteration number, then who wrote it and that writer's store sequence.
 * Words are u32 indices from the start of the page.
 */
export const GuestPageWords = {
  ITERATION_LO: 0,
  ITERATION_HI: 1,
  WRITER_VCPU: 2,
  WRITER_SEQ: 3,
} as const;
export const GUEST_PAGE_HEADER_WORDS = 4;

// ---------------------------------------------------------------------------------------------
// Guest-visible globals of the test program (dirty_log_test keeps these in guest memory).

export const GuestGlobalsLayout = defineBlock('guest-globals', ['ITERATION'], []);
export type GuestGlobalsBlock = SharedBlock<keyof typeof GuestGlobalsLayout.words, never>;

/** Typed views of one ring mapping. */
export interface RingViews {
  /** flags and slot and offset words, as Int32 (flags use Atomics). */
  readonly i32: Int32Array;
  /** The same memory as unsigned words for slot and offset. */
  readonly u32: Uint32Array;
  /** Entries in the ring (a power of two). */
  readonly entryCount: number;
}

export function ringViews(buffer: SharedArrayBuffer): RingViews {
  return {
    i32: new Int32Array(buffer),
    u32: new Uint32Array(buffer),
    entryCount: buffer.byteLength / DIRTY_GFN_BYTES,
  };
}

/** The emulator stores u64 values as two u32 halves; that needs a little-endian host. */
export function assertLittleEndian(): void {
  const probe = new Uint8Array(new Uint32Array([1]).buffer);
  if (probe[0] !== 1) throw new Error('dirtyring needs a little-endian host (kvm_dirty_gfn layout)');
}

// ---------------------------------------------------------------------------------------------
// The controlled scheduler's token (stress harness, issue 6). Every participant of a controlled
// run — each vCPU worker and the userspace (harvester) worker — parks at every step hook on its
// own participant block and waits for the scheduler in the main thread to grant it the next
// move. Only one participant moves at a time, so a run is a pure function of its choices.

export const SchedulerTokenLayout = defineBlock(
  'scheduler-token',
  [
    /** Bumped (and notified) by a participant each time it parks or finishes; the scheduler waits on it. */
    'PARKED_SEQ',
    /** 1: the run is being abandoned; every participant unwinds at its next park. */
    'ABORT',
  ],
  [],
);
export type SchedulerTokenBlock = SharedBlock<keyof typeof SchedulerTokenLayout.words, never>;

export const ParticipantLayout = defineBlock(
  'participant',
  [
    /** ParticipantStatus, written by the participant. */
    'STATUS',
    /** Bumped (and notified) by the scheduler to let this participant make one move. */
    'GRANT',
    /** The step point it is parked at: a Step (kernel/step-hook.ts) or a ControlStep. */
    'STEP',
    /** The step's two arguments, as the hook passed them (truncated to i32). */
    'ARG_A',
    'ARG_B',
  ],
  [],
);
export type ParticipantBlock = SharedBlock<keyof typeof ParticipantLayout.words, never>;

export const ParticipantStatus = {
  /** Not started in this run. */
  IDLE: 0,
  /** Granted: executing up to its next step point. */
  RUNNING: 1,
  /** Waiting at a step point for a grant. */
  PARKED: 2,
  /** Its program ended (normally, aborted, or with an error). */
  FINISHED: 3,
} as const;

/** Bytes of a token for `participants` participants: the scheduler block, then one block each. */
export function schedulerTokenBytes(participants: number): number {
  return SchedulerTokenLayout.bytes + participants * ParticipantLayout.bytes;
}
