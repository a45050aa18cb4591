/**
 * Known bugs of userspace — the harvester and the run controller — as options. The kernel never
 * sees them: a collector or a harness takes them when it is built. Their bits share one space
 * with the kernel's mutants (kernel/mutants.ts) so that a run, a schedule file or the CLI names
 * any known bug with one number; known-bugs.ts holds the names.
 */
import { HarvestOrdering } from '../kernel/dirty-ring.js';

export const UserspaceFault = {
  /** The harvester sets RESET on an entry without recording it (it skips entries). */
  HARVEST_SKIPS_ENTRY: 1 << 2,
  /** Userspace copies/reads pages, then resets (writes in between are lost). */
  COPY_BEFORE_RESET: 1 << 3,
  /** The final sync runs without parking the vCPUs. */
  NO_FINAL_STOP: 1 << 4,
  // Orderings: visible only under a weak memory model (controlled runs, arm64 profile).
  /** The harvester marks entries RESET with a plain store (QEMU before 2022): no release. */
  HARVEST_RELAXED_RESET: 1 << 14,
  /** The harvester loads flags plainly (dirty_log_test before 2022): no acquire before the payload. */
  HARVEST_RELAXED_FLAGS: 1 << 15,
} as const;

/**
 * Under HARVEST_SKIPS_ENTRY the harvester drops one entry in this many. A prime, so that the
 * dropped entries do not line up with ring sizes, vCPU counts or workload strides (powers of
 * two and small counts), and small, so that any run harvesting a few hundred entries loses
 * several pages the checks must catch.
 */
export const HARVEST_SKIP_PERIOD = 61;

export const USERSPACE_FAULT_MASK: number = Object.values(UserspaceFault).reduce((m, b) => m | b, 0);

/** The faults of a known-bug bitmask, as the options collectors and harnesses take. */
export interface UserspaceFaults {
  /** Drop every HARVEST_SKIP_PERIOD-th harvested ring entry without recording it (still marked RESET). */
  readonly harvestSkipsEntry: boolean;
  /** Read (copy, send) harvested pages before KVM_RESET_DIRTY_RINGS / before their CLEAR. */
  readonly copyBeforeReset: boolean;
  /** Collect and verify at the end of an iteration without stopping the vCPUs first. */
  readonly noFinalStop: boolean;
  /** The harvest's orderings (HarvestOrdering of kernel/dirty-ring.ts): plain flags load and/or RESET store. */
  readonly harvestOrdering: number;
}

export const NO_FAULTS: UserspaceFaults = { harvestSkipsEntry: false, copyBeforeReset: false, noFinalStop: false, harvestOrdering: HarvestOrdering.ACQ_REL };

export function userspaceFaults(bits: number): UserspaceFaults {
  return {
    harvestSkipsEntry: (bits & UserspaceFault.HARVEST_SKIPS_ENTRY) !== 0,
    copyBeforeReset: (bits & UserspaceFault.COPY_BEFORE_RESET) !== 0,
    noFinalStop: (bits & UserspaceFault.NO_FINAL_STOP) !== 0,
    harvestOrdering:
      ((bits & UserspaceFault.HARVEST_RELAXED_FLAGS) !== 0 ? HarvestOrdering.RELAXED_FLAGS : 0) |
      ((bits & UserspaceFault.HARVEST_RELAXED_RESET) !== 0 ? HarvestOrdering.RELAXED_RESET : 0),
  };
}
