/**
 * Words the userspace threads of a controlled run share among themselves (not the kernel's):
 * the harvester's requests to its reset thread and the replies. A real VMM would use a mutex
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
  ],
  [],
);
export type UserspaceSharedBlock = SharedBlock<keyof typeof UserspaceSharedLayout.words, never>;
