/**
 * Known kernel-side protocol bugs as switches: a bitmask in the VM's MUTANTS word, so every
 * thread sees the same set, read through the one check `Vm.hasMutant`. Each reproduces a bug
 * that real kernels had or could have; the oracle must catch every one. Bugs of userspace or
 * of the run controller are not here: they are options of the collector or the harness
 * (userspace/faults.ts), and userspace/known-bugs.ts names both kinds.
 */
export const KernelMutant = {
  /** Fault path marks the page dirty before the SPTE becomes writable (seed 001). */
  DIRTY_BEFORE_WRITABLE: 1 << 0,
  /** The vCPU publishes DIRTY before storing slot/offset. */
  FLAGS_BEFORE_PAYLOAD: 1 << 1,
  /** Legacy GET clears bits without write-protecting. */
  LEGACY_GET_NO_PROTECT: 1 << 5,
  /** The pre-2026 range check `offset + highest bit < npages`, which wraps. */
  RESET_WRAP_CHECK: 1 << 6,
  /** The soft-full exit is delivered late (more pushes than the reserve). */
  LATE_SOFT_FULL: 1 << 7,
  /** CLEAR accepts unaligned ranges and clears the wrong bits. */
  CLEAR_UNALIGNED: 1 << 8,
  /** Reset re-protects pages but skips the remote TLB flush. */
  NO_TLB_FLUSH: 1 << 9,
  /**
   * The remote TLB flush posts its requests but does not wait for the vCPUs in guest mode to
   * acknowledge (kvm_make_all_cpus_request without wait), so a store through a stale TLB entry
   * can land after userspace has copied the page.
   */
  FLUSH_NO_WAIT: 1 << 10,
  // Orderings: visible only under a weak memory model (controlled runs, arm64 profile).
  /** The ring push publishes DIRTY without the smp_wmb after the payload. */
  PUSH_NO_WMB: 1 << 11,
  /** The reset walk of an ACQ_REL ring loads flags plainly instead of with smp_load_acquire. */
  RESET_RELAXED_FLAGS: 1 << 12,
  /**
   * The fast page fault makes the SPTE writable with a relaxed compare-and-swap
   * (cmpxchg_relaxed): "writable before dirty" then holds in program order only, and a
   * bitmap's relaxed set_bit does not order it, so GET can see the bit, read the SPTE as
   * still protected, skip the write-protect, and leave the page writable with no record.
   */
  FAULT_RELAXED_WRITABLE: 1 << 13,
  // Page write-tracking: high bits, so that other additions cannot collide.
  /** The fault path makes a write-tracked page writable (ignores WRITE_TRACKED), so later stores are never emulated. */
  TRACK_FAULT_FIXES_TRACKED: 1 << 16,
  /** Adding write tracking skips the remote TLB flush: a stale writable TLB entry keeps bypassing emulation. */
  TRACK_NO_TLB_FLUSH: 1 << 17,
  /** The emulator notifies before it stores: the notifier reads the old bytes. */
  TRACK_NOTIFY_BEFORE_WRITE: 1 << 18,
  /** Unregister skips the grace period: it returns while a callback may still be running. */
  TRACK_NO_GRACE_PERIOD: 1 << 19,
} as const;

/** Every kernel mutant bit. */
export const KERNEL_MUTANT_MASK: number = Object.values(KernelMutant).reduce((m, b) => m | b, 0);
