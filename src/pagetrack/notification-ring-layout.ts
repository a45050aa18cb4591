/**
 * The notification rings (pagetrack/notification-ring.ts): one per vCPU plus one for the memslot
 * ioctls, each single-producer single-consumer, so that userspace receives every notification
 * in the order its producer made them.
 */
import type { SharedBlock} from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

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
export const TRACK_RING_ENTRY_WORDS = TrackRingEntryWords.DATA + TRACK_RING_DATA_BYTES / Uint32Array.BYTES_PER_ELEMENT;
export const TrackRingEntryKind = { WRITE: 1, REMOVE_REGION: 2 } as const;

/** Byte offsets inside a ring set's buffer. */
export function trackRingSetLayout(ringCount: number, entries: number): { ringsOffset: number; entriesOffset: number; bytes: number } {
  const ringsOffset = TrackRingSetLayout.bytes;
  const entriesOffset = ringsOffset + ringCount * TrackRingLayout.bytes;
  return { ringsOffset, entriesOffset, bytes: entriesOffset + ringCount * entries * TRACK_RING_ENTRY_WORDS * Uint32Array.BYTES_PER_ELEMENT };
}
