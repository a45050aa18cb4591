/**
 * The controlled scheduler's token (token.ts). Every participant of a controlled run — each vCPU
 * worker and the userspace (harvester) worker — parks at every step hook on its own participant
 * block and waits for the scheduler in the main thread to grant it the next move. Only one
 * participant moves at a time, so a run is a pure function of its choices.
 */
import type { SharedBlock} from '../../abi/layout.js';
import { defineBlock } from '../../abi/layout.js';

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
    /** The scheduler's answer to a READ_FROM park: which candidate store the load reads. */
    'DECISION',
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
