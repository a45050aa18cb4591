/**
 * The controlled mode's own step points: the places where a participant's *userspace* code waits
 * or decides (a parked vCPU thread, a stalled one, the harvester choosing to collect, to stop
 * the vCPUs, to verify). The kernel's step points (kernel/step-hook.ts, numbers 1..14) cover the
 * protocol itself; these start at 100 so that the two never collide in a trace.
 *
 * Some points are *waits*: the participant may only move once a condition on shared memory
 * holds (see enabled.ts). Modelling a wait as "not enabled until ..." instead of letting the
 * participant spin is what keeps a controlled run free of busy loops and deterministic.
 */
import { Step } from '../../kernel/step-hook.js';

export const ControlStep = {
  /** A participant's first point in a run: nothing has happened yet. */
  START: 100,
  /** vCPU thread parked outside KVM_RUN (CONTROL = PAUSE). Wait: CONTROL != PAUSE. */
  VCPU_WAIT_RUN: 101,
  /** vCPU thread stalled after exit 31, or idle after hlt. Wait: WAKE != a, or CONTROL != RUN. */
  VCPU_WAIT_WAKE: 102,
  /** Userspace is about to collect (harvest + reset, GET, or GET + CLEAR) and copy. */
  USER_COLLECT: 110,
  /** Userspace waits for a vCPU thread to change state. Wait: the VM doorbell != a. */
  USER_WAIT_PROGRESS: 111,
  /** Userspace is about to stop every vCPU (kick + pause): the final sync of an iteration begins. */
  USER_PAUSE: 112,
  /** Userspace waits until every vCPU thread is parked. Wait: all PARKED (or dead). */
  USER_WAIT_PARKED: 113,
  /** Userspace is about to verify the iteration (oracle + byte-exact destination check). */
  USER_VERIFY: 114,
  /** Userspace is about to publish iteration a and resume every vCPU. */
  USER_RESUME: 115,
  /**
   * Userspace is about to enter an ioctl (a = UserIoctl): a real harvester can be preempted
   * between any two system calls, e.g. between KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG.
   */
  USER_IOCTL: 116,
} as const;

/** The ioctls whose entry is a userspace scheduling point (ControlStep.USER_IOCTL's a). */
export const UserIoctl = { GET_DIRTY_LOG: 1, CLEAR_DIRTY_LOG: 2, RESET_DIRTY_RINGS: 3 } as const;

const NAMES: Readonly<Record<number, string>> = {
  ...Object.fromEntries(Object.entries(Step).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, '-')])),
  ...Object.fromEntries(Object.entries(ControlStep).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, '-')])),
};

/** A step point's name for traces: `fault-make-writable`, `user-collect`, ... */
export function stepName(step: number): string {
  return NAMES[step] ?? `step-${step}`;
}

/** Participant 0 is userspace (the harvester); participant p ≥ 1 is vCPU p − 1. */
export const USERSPACE_PARTICIPANT = 0;

export function participantName(p: number): string {
  return p === USERSPACE_PARTICIPANT ? 'U' : `v${p - 1}`;
}
