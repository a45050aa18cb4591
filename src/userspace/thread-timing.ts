/**
 * How long the worker threads (vCPUs, devices, the migration's destination) and userspace wait
 * in one go. Every wait is bounded and re-checks its condition: a wake-up that raced the wait
 * is then late by at most one slice, never lost, and a thread told to terminate always ends.
 */

/**
 * A worker thread's message-port budget: it yields to its event loop at least this often while
 * it runs, so that control messages (a page-track notifier to attach, a join) are answered
 * within that time even while the guest keeps writing.
 */
export const DEFAULT_PREEMPT_AFTER_MS = 20;

/**
 * One wait of a thread with nothing to do (parked, halted, an empty wire): it is woken by a
 * WAKE bump or a HEAD move; the slice only bounds a lost wake-up. Asynchronous waits of this
 * length keep the thread's message port answering.
 */
export const IDLE_WAIT_SLICE_MS = 50;

/** One blocking wait of a vCPU stalled on a full ring, between two looks at CONTROL. */
export const STALL_WAIT_SLICE_MS = 100;

/** One wait of userspace for its threads (park, drain, a grace period) between two looks at them. */
export const USERSPACE_WAIT_SLICE_MS = 20;
