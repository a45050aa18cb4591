/**
 * Page write-tracking's shared state (x86 page_track.c; kernel/page-track.ts): gfn_track
 * counters, the notifier table and its SRCU words, statistics.
 */
import type { SharedBlock } from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

/** KVM's gfn_write_track counters are `unsigned short`: one u16 per 4 KiB page of a memslot. */
export const GFN_TRACK_BYTES_PER_PAGE = 2;
/** Largest write-track count (USHRT_MAX): one more add WARNs and changes nothing. */
export const GFN_TRACK_MAX_COUNT = 0xffff;

/** Bytes of a memslot's gfn_track array, rounded up to whole u32 words. */
export function gfnTrackBytes(pageCount: number): number {
  const word = Uint32Array.BYTES_PER_ELEMENT;
  return Math.ceil((pageCount * GFN_TRACK_BYTES_PER_PAGE) / word) * word;
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
