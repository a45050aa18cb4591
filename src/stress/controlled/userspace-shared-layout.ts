/**
 * Words the userspace threads of a controlled run share among themselves (not the kernel's):
 * the harvester's requests to its reset thread and the replies, and a user harvester's
 * collections on threads of its own. A real VMM would use a mutex
 * and a condition variable; here every wait is a park whose condition the scheduler reads
 * from these words (enabled.ts).
 */
import type { SharedBlock } from '../../abi/layout.js';
import { defineBlock } from '../../abi/layout.js';

export const UserspaceSharedLayout = defineBlock(
  'userspace-shared',
  [
    /** Resets asked for so far (the harvester bumps it: "do the ioctl"). */
    'RESET_REQUEST',
    /** The last request the reset thread has finished. */
    'RESET_DONE',
    /** What KVM_RESET_DIRTY_RINGS returned for that request. */
    'RESET_COUNT',
    /** 1: the run is over; the reset thread ends. */
    'TERMINATE',
    // A user harvester on threads of its own (controlled-harvester-collector.ts): userspace asks
    // for collections; each thread serves them and adds to the counters.
    /** Collections asked for so far; whether the last is final; its stalled vCPUs (bit v). */
    'HARVEST_REQUEST',
    'HARVEST_FINAL',
    'HARVEST_RING_FULL',
    /** Collections served, summed over the threads; 1 + the first thread that threw. */
    'HARVESTS_DONE',
    'HARVEST_FAILED',
    /** The threads' barrier: arrivals, generation. */
    'HARVEST_BARRIER_ARRIVED',
    'HARVEST_BARRIER_GEN',
    /** RESET marks made through the accessors, and the ioctls. */
    'HARVEST_MARKS',
    'HARVEST_RESET_CALLS',
    'HARVEST_ENTRIES_RESET',
    'HARVEST_GET_CALLS',
    'HARVEST_CLEAR_CALLS',
    'HARVEST_IOCTL_ERRORS',
    /** Per harvester thread: its reports in the current collection. */
    'HARVEST_REPORTS_0',
    'HARVEST_REPORTS_1',
    'HARVEST_REPORTS_2',
    'HARVEST_REPORTS_3',
    'HARVEST_REPORTS_4',
    'HARVEST_REPORTS_5',
    'HARVEST_REPORTS_6',
    'HARVEST_REPORTS_7',
  ],
  [],
);
export type UserspaceSharedBlock = SharedBlock<keyof typeof UserspaceSharedLayout.words, never>;
