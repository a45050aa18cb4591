/**
 * The one place where shared-memory layouts are defined. Every SharedArrayBuffer the emulator
 * shares between threads is described here; other modules index only through these names.
 *
 * A block is an Int32 region (words touched with Atomics when another thread reads them)
 * followed by a Float64 region (counters and times written by one thread with plain stores
 * and read by others as statistics, or after an Atomics hand-off that orders them).
 */
import { DIRTY_GFN_BYTES, PAGE_WORDS } from './constants.js';

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
  /**
   * Page write-tracking (issue 4): this vCPU's notification ring to userspace is soft-full;
   * KVM_RUN returns EMU_EXIT_TRACK_RING_FULL at the next guest entry (src/pagetrack/notification-ring.ts).
   */
  TRACK_RING_FULL: 1 << 3,
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

/** Page-header writer ids at or above this are devices (id − DEVICE_WRITER_BASE), not vCPUs. */
export const DEVICE_WRITER_BASE = 0x10000;

// ---------------------------------------------------------------------------------------------
// Userspace's shared reaper (src/userspace/self-reaper.ts): any thread may harvest + reset
// under its lock; each ring's userspace fetch index lives here so that every reaper continues
// where the previous one stopped. Counters are written under the lock only.

export const ReaperLayout = defineBlock(
  'reaper',
  ['LOCK'],
  ['HARVESTED', 'RESETS', 'ENTRIES_RESET', 'MISMATCHES', 'BAD_ENTRIES', 'REAPS'],
);
/** After a ReaperLayout block come one Int32 fetch index per vCPU: vCPU i at word REAPER_FETCH_WORD + i. */
export const REAPER_FETCH_WORD = ReaperLayout.bytes / 4;

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
  /**
   * Page write-tracking (issue 4, src/kernel/page-track.ts): the gfn's write-track count is
   * non-zero, so a write fault on it is never fixed — the store is emulated and notified. Set
   * and cleared under mmu_lock as the count goes 0→1 and 1→0; it plays the part of KVM's
   * cleared MMU-writable SPTE bit, which is what stops the fast-fault path from making a
   * tracked page writable. Dirty-log re-protection clears only WRITABLE and leaves it alone.
   */
  WRITE_TRACKED: 1 << 1,
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

/**
 * Fill a guest page header at word `base` of `m` (a page in guest memory, or a scratch copy of
 * the bytes a notifier is told about). Every writer — vCPU, tracked-write emulator, device —
 * goes through here so that the oracle's reading of the header has one definition to match.
 */
export function writePageHeader(m: Uint32Array, base: number, iteration: number, writer: number, seq: number): void {
  m[base + GuestPageWords.ITERATION_LO] = iteration;
  m[base + GuestPageWords.ITERATION_HI] = 0;
  m[base + GuestPageWords.WRITER_VCPU] = writer;
  m[base + GuestPageWords.WRITER_SEQ] = seq;
}

// ---------------------------------------------------------------------------------------------
// Guest-visible globals of the test program (dirty_log_test keeps these in guest memory).

export const GuestGlobalsLayout = defineBlock('guest-globals', ['ITERATION'], []);
export type GuestGlobalsBlock = SharedBlock<keyof typeof GuestGlobalsLayout.words, never>;

// ---------------------------------------------------------------------------------------------
// Migration (src/userspace/migration/). Added for issue 5; nothing above depends on these.

/**
 * Dirty-limit state of one vCPU (QEMU's cpu->throttle_us_per_full): written by userspace's
 * dirty-limit controller, read by the vCPU thread, which sleeps that long after each exit 31.
 */
export const VcpuThrottleLayout = defineBlock(
  'vcpu-throttle',
  [
    /** Sleep after each ring-full exit, in µs (0: not throttled). */
    'THROTTLE_US_PER_FULL',
  ],
  [
    /** Time the vCPU thread spent in throttle sleeps, and how many it made. */
    'THROTTLE_SLEEP_NS',
    'THROTTLE_SLEEPS',
  ],
);
export type VcpuThrottleBlock = SharedBlock<keyof typeof VcpuThrottleLayout.words, keyof typeof VcpuThrottleLayout.floats>;

/**
 * The migration "wire": a single-producer single-consumer queue of whole pages from the source
 * (userspace's migration loop) to the destination thread, which writes them into destination
 * memory. HEAD and TAIL are free-running u32 counts of pages sent and applied; the slots live
 * in a second buffer of SLOT_COUNT × WIRE_SLOT_WORDS Int32 words.
 */
export const MigrationWireLayout = defineBlock(
  'migration-wire',
  [
    /** Pages published by the source (the producer advances it after filling a slot). */
    'HEAD',
    /** Pages applied by the destination (the consumer advances it after copying a slot out). */
    'TAIL',
    /** 1: the source is done, the destination thread ends once the queue is empty. */
    'CLOSED',
    /** Slots in the queue (a power of two). */
    'SLOT_COUNT',
  ],
  [
    /** Time the destination spent applying pages, in ns. */
    'APPLY_NS',
  ],
);
export type MigrationWireBlock = SharedBlock<keyof typeof MigrationWireLayout.words, keyof typeof MigrationWireLayout.floats>;

/** One wire slot: which destination page it holds, then the page's 4 KiB. */
export const WireSlotWords = {
  /** Index of the memslot in the migration's slot list. */
  SLOT_INDEX: 0,
  /** Page offset inside that memslot. */
  PAGE: 1,
} as const;
export const WIRE_SLOT_HEADER_WORDS = 2;
export const WIRE_SLOT_WORDS = WIRE_SLOT_HEADER_WORDS + PAGE_WORDS;

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

// ======================================================================================
// Page write-tracking (issue 4): x86's page_track.c. Everything below is new with it.

/** KVM's gfn_write_track counters are `unsigned short`: one u16 per 4 KiB page of a memslot. */
export const GFN_TRACK_BYTES_PER_PAGE = 2;
/** Largest write-track count (USHRT_MAX): one more add WARNs and changes nothing. */
export const GFN_TRACK_MAX_COUNT = 0xffff;

/** Bytes of a memslot's gfn_track array, rounded up to whole u32 words. */
export function gfnTrackBytes(pageCount: number): number {
  return Math.ceil((pageCount * GFN_TRACK_BYTES_PER_PAGE) / 4) * 4;
}

/** Slots in the emulator's notifier table (KVM keeps an unbounded hlist). */
export const MAX_TRACK_NOTIFIERS = 16;

/** VM-wide page-track state: the notifier head and its SRCU, plus statistics. */
export const PageTrackLayout = defineBlock(
  'page-track',
  [
    /** Serializes changes of the notifier table (KVM takes mmu_lock for write around hlist_add/del). */
    'NOTIFIER_LOCK',
    /** ACTIVE entries in the table: the `hlist_empty` fast path of a write notification. */
    'ACTIVE_NOTIFIERS',
    /** SRCU readers outside vCPU threads (memslot ioctls delivering track_remove_region). */
    'IOCTL_READERS',
    /** gfns whose count is non-zero. */
    'TRACKED_GFNS',
  ],
  [
    'ADDS',
    'REMOVES',
    'OVERFLOW_WARNINGS',
    'UNDERFLOW_WARNINGS',
    'NOTIFIERS_REGISTERED',
    'NOTIFIERS_UNREGISTERED',
    /** Grace periods run by unregister, and how many found a reader inside the notifier list. */
    'GRACE_PERIODS',
    'GRACE_PERIODS_WAITED',
    'GRACE_WAIT_TOTAL_NS',
    'GRACE_WAIT_MAX_NS',
    'REMOVE_REGION_NOTIFICATIONS',
  ],
);
export type PageTrackBlock = SharedBlock<keyof typeof PageTrackLayout.words, keyof typeof PageTrackLayout.floats>;

/** One entry of the notifier table. Readers act only on ACTIVE entries. */
export const TrackNotifierLayout = defineBlock(
  'track-notifier',
  [
    /** TrackNotifierState. */
    'STATE',
    /** Bumped when the entry is reserved: a thread's instance is valid only for its generation. */
    'GENERATION',
  ],
  [],
);
export type TrackNotifierBlock = SharedBlock<keyof typeof TrackNotifierLayout.words, never>;
export const TrackNotifierState = {
  FREE: 0,
  /** Reserved by a registration whose instances are being attached in every thread. */
  RESERVED: 1,
  ACTIVE: 2,
  /** Unlinked; unregister waits out the grace period before the entry becomes FREE. */
  UNREGISTERING: 3,
} as const;

/** Per vCPU: its SRCU read-side word and the write-notification statistics (one writer each). */
export const PageTrackVcpuLayout = defineBlock(
  'page-track-vcpu',
  [
    /** Incremented on entering and on leaving the notifier list: odd = inside a notification. */
    'SRCU_SEQ',
  ],
  [
    /** Emulated writes handed to the notifier list (any page). */
    'NOTIFIED_WRITES',
    /** Emulated writes to pages that were write-tracked (count > 0). */
    'TRACKED_WRITES',
    /** Individual notifier callbacks made. */
    'NOTIFIER_CALLS',
  ],
);
export type PageTrackVcpuBlock = SharedBlock<keyof typeof PageTrackVcpuLayout.words, keyof typeof PageTrackVcpuLayout.floats>;

/** Byte offsets inside the VM's page-track buffer, for `maxVcpus` vCPUs. */
export function pageTrackBufferLayout(maxVcpus: number): { notifiersOffset: number; vcpusOffset: number; bytes: number } {
  const notifiersOffset = PageTrackLayout.bytes;
  const vcpusOffset = notifiersOffset + MAX_TRACK_NOTIFIERS * TrackNotifierLayout.bytes;
  return { notifiersOffset, vcpusOffset, bytes: vcpusOffset + maxVcpus * PageTrackVcpuLayout.bytes };
}

// ---------------------------------------------------------------------------------------------
// The notification rings (src/pagetrack/notification-ring.ts): one per vCPU plus one for the
// memslot ioctls, each single-producer single-consumer, so that userspace receives every
// notification in the order its producer made them.

export const TrackRingSetLayout = defineBlock(
  'track-ring-set',
  [
    'RING_COUNT',
    /** Entries per ring (a power of two). */
    'ENTRIES',
    /** Next VM-wide notification sequence number (fetch-and-add by producers). */
    'SEQ',
    /** Serializes producers on the ioctl ring (any non-vCPU thread may delete a memslot). */
    'IOCTL_LOCK',
  ],
  [],
);
export type TrackRingSetBlock = SharedBlock<keyof typeof TrackRingSetLayout.words, never>;

export const TrackRingLayout = defineBlock(
  'track-ring',
  [
    /** Free-running u32 producer index: written by the producer only, after the entry. */
    'HEAD',
    /** Free-running u32 consumer index: written by userspace only, after reading entries. */
    'TAIL',
  ],
  [
    'PUSHES',
    /** Pushes that left the ring soft-full and requested an exit. */
    'SOFT_FULL_REQUESTS',
    /** Pushes that found the ring completely full and waited for userspace. */
    'HARD_FULL_WAITS',
  ],
);
export type TrackRingBlock = SharedBlock<keyof typeof TrackRingLayout.words, keyof typeof TrackRingLayout.floats>;

/** One notification: u32 words. DATA holds up to TRACK_RING_DATA_BYTES of the written bytes. */
export const TrackRingEntryWords = {
  /** VM-wide sequence number, taken when the notification is made. */
  SEQ: 0,
  /** TrackRingEntryKind. */
  KIND: 1,
  /** The writing vCPU, or -1 for the ioctl ring. */
  VCPU: 2,
  /** WRITE: the gpa. REMOVE_REGION: the base gfn. (u64 as two halves.) */
  ADDR_LO: 3,
  ADDR_HI: 4,
  /** WRITE: bytes written. REMOVE_REGION: pages. */
  LENGTH: 5,
  DATA: 6,
} as const;
export const TRACK_RING_DATA_BYTES = 16;
export const TRACK_RING_ENTRY_WORDS = TrackRingEntryWords.DATA + TRACK_RING_DATA_BYTES / 4;
export const TrackRingEntryKind = { WRITE: 1, REMOVE_REGION: 2 } as const;

/** Byte offsets inside a ring set's buffer. */
export function trackRingSetLayout(ringCount: number, entries: number): { ringsOffset: number; entriesOffset: number; bytes: number } {
  const ringsOffset = TrackRingSetLayout.bytes;
  const entriesOffset = ringsOffset + ringCount * TrackRingLayout.bytes;
  return { ringsOffset, entriesOffset, bytes: entriesOffset + ringCount * entries * TRACK_RING_ENTRY_WORDS * 4 };
}

// ---------------------------------------------------------------------------------------------
// The shadow-page-table example (src/pagetrack/shadow-page-table.ts): a copy of each shadowed
// guest page-table page, kept in sync by a notifier that runs in the writing vCPU's thread.

export const ShadowPageTableLayout = defineBlock(
  'shadow-page-table',
  [
    /** The shadow's own lock (KVM's shadow MMU holds mmu_lock in kvm_mmu_track_write). */
    'LOCK',
    /** Candidate guest page-table pages. */
    'PAGE_COUNT',
  ],
  [
    /** Notifications that re-synced a shadowed span. */
    'SYNCS',
    /** ... of which the guest bytes read back differed from the notified bytes (a newer write won). */
    'REFETCH_DIFFERED',
    /** Notifications for pages this shadow does not hold. */
    'IGNORED_WRITES',
    'PAGES_SHADOWED',
    'PAGES_UNSHADOWED',
    /** Pages dropped because their memslot went away (track_remove_region). */
    'PAGES_DROPPED',
    'REMOVE_REGIONS',
  ],
);
export type ShadowPageTableBlock = SharedBlock<keyof typeof ShadowPageTableLayout.words, keyof typeof ShadowPageTableLayout.floats>;
/** Per candidate page: 1 while the page is shadowed (write-tracked and copied). */
export const ShadowPageState = { NOT_SHADOWED: 0, SHADOWED: 1 } as const;

/** Byte offsets inside a shadow page table's buffer. */
export function shadowPageTableLayout(pageCount: number): { gfnsOffset: number; statesOffset: number; pagesOffset: number; bytes: number } {
  const gfnsOffset = ShadowPageTableLayout.bytes; // Float64 gfns: 8-aligned (block sizes are)
  const statesOffset = gfnsOffset + pageCount * 8;
  const pagesOffset = Math.ceil((statesOffset + pageCount * 4) / 8) * 8;
  return { gfnsOffset, statesOffset, pagesOffset, bytes: pagesOffset + pageCount * 4096 };
}

// ---------------------------------------------------------------------------------------------
// The probe notifier (src/pagetrack/probe-notifier.ts): counts deliveries and callbacks in
// flight, optionally holding each callback, to check unregister's grace period.

export const ProbeNotifierLayout = defineBlock(
  'track-probe',
  [
    /** Callbacks currently executing (any thread). */
    'IN_FLIGHT',
    /** Write notifications received (wraps at 2^31; a probe is short-lived). */
    'DELIVERED',
    'REMOVE_REGIONS',
    /** 1 = closed: callbacks block until userspace opens it (bounded). */
    'GATE',
    /** Busy-wait inside each callback, in microseconds. */
    'HOLD_US',
    /** Callbacks that gave up waiting on a closed gate. */
    'GATE_TIMEOUTS',
  ],
  [],
);
export type ProbeNotifierBlock = SharedBlock<keyof typeof ProbeNotifierLayout.words, never>;
// ---------------------------------------------------------------------------------------------
// The controlled scheduler's token (stress harness, issue 6). Every participant of a controlled
// run — each vCPU worker and the userspace (harvester) worker — parks at every step hook on its
// own participant block and waits for the scheduler in the main thread to grant it the next
// move. Only one participant moves at a time, so a run is a pure function of its choices.

export const SchedulerTokenLayout = defineBlock(
  'scheduler-token',
  [
    /**
     * Bumped (and notified) by a participant each time it parks or finishes, after it stored its
     * STATUS: a doorbell the scheduler sleeps on. The scheduler decides from the STATUS words,
     * not from counting bumps, since a bump can land long after the status it announces.
     */
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
    /** ParticipantStatus: PARKED and FINISHED written by the participant, RUNNING by the scheduler's grant() (before it bumps GRANT). */
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
