/**
 * Shared blocks of live migration: a vCPU's dirty-limit throttle (vcpu-throttle.ts) and the
 * migration wire from the source loop to the destination thread (destination.ts).
 */
import { PAGE_WORDS } from '../../abi/constants.js';
import type { SharedBlock} from '../../abi/layout.js';
import { defineBlock } from '../../abi/layout.js';

/**
 * Dirty-limit state of one vCPU (QEMU's cpu->throttle_us_per_full): written by userspace's
 * dirty-limit controller, read by the vCPU thread, which sleeps that long after each exit 31.
 */
export const VcpuThrottleLayout = defineBlock(
  'vcpu-throttle',
  [
    /** Sleep after each ring-full exit, in µs (0: not throttled). */
    'THROTTLE_US_PER_FULL',
    /** 1 while the vCPU thread sleeps in its throttle (written by that thread; read by the app's lanes). */
    'SLEEPING',
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
