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
  /** Userspace waits for its reset thread to finish the reset it asked for. Wait: RESET_DONE >= a. */
  USER_WAIT_RESET_DONE: 117,
  /** Userspace asked its reset thread for a reset and is about to harvest again meanwhile. */
  USER_HARVEST_AGAIN: 118,
  /** Userspace waits for its harvester's threads to serve a collection. Wait: HARVESTS_DONE >= a. */
  USER_WAIT_HARVESTERS: 119,
  /** The reset thread waits for a request. Wait: RESET_REQUEST != a, or TERMINATE. */
  RESETTER_WAIT_REQUEST: 120,
  /** A harvester thread waits for a collection. Wait: HARVEST_REQUEST != a, or TERMINATE. */
  HARVESTER_WAIT_REQUEST: 121,
  /** A harvester thread waits at its barrier. Wait: HARVEST_BARRIER_GEN != a, or TERMINATE. */
  HARVESTER_BARRIER: 122,
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

const NUMBERS: ReadonlyMap<string, number> = new Map(Object.entries(NAMES).map(([n, name]) => [name, Number(n)]));

/** The inverse of stepName, or undefined for a name it never prints. */
export function stepNumber(name: string): number | undefined {
  const known = NUMBERS.get(name);
  if (known !== undefined) return known;
  const m = /^step-(-?\d+)$/.exec(name);
  return m !== null && NAMES[Number(m[1])] === undefined ? Number(m[1]) : undefined;
}

/** Participant 0 is userspace (the harvester); participant p ≥ 1 is vCPU p − 1; extras follow the vCPUs. */
export const USERSPACE_PARTICIPANT = 0;

/**
 * Who takes part in a run: userspace, the vCPUs, then extra userspace threads (each of a kind
 * registered with the participant worker, e.g. `resetter`), in that order.
 */
export interface Roster {
  readonly vcpus: number;
  readonly extras: readonly string[];
}

/** Short names of the extra kinds in traces and diagrams. */
const EXTRA_NAMES: Readonly<Record<string, string>> = { resetter: 'R', ...Object.fromEntries(Array.from({ length: 8 }, (_, t) => [`harvester${t}`, `H${t}`])) };

export function participantCount(r: Roster): number {
  return 1 + r.vcpus + r.extras.length;
}

/** The inverse of participantName under `roster`, or undefined for a name it never prints. */
export function participantNumber(name: string, roster: Roster): number | undefined {
  for (let p = 0; p < participantCount(roster); p++) if (participantName(p, roster) === name) return p;
  return undefined;
}

/** `U`, `v0`, ..., then the extras' short names (`R`); without a roster every p ≥ 1 is a vCPU. */
export function participantName(p: number, roster?: Roster): string {
  if (p === USERSPACE_PARTICIPANT) return 'U';
  if (roster !== undefined && p > roster.vcpus) {
    const kind = roster.extras[p - roster.vcpus - 1] ?? '?';
    return EXTRA_NAMES[kind] ?? kind;
  }
  return `v${p - 1}`;
}
