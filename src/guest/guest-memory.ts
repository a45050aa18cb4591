/**
 * What the guest keeps in its memory: the header every writer puts at the start of a page it
 * writes (the dirty_log_test writer's iteration number, plus who wrote it and that writer's
 * store sequence), and the test program's globals.
 */
import type { SharedBlock} from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

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

/** Page-header writer ids at or above this are devices (id − DEVICE_WRITER_BASE), not vCPUs. */
export const DEVICE_WRITER_BASE = 0x10000;

// Guest-visible globals of the test program (dirty_log_test keeps these in guest memory).

export const GuestGlobalsLayout = defineBlock('guest-globals', ['ITERATION'], []);
export type GuestGlobalsBlock = SharedBlock<keyof typeof GuestGlobalsLayout.words, never>;
