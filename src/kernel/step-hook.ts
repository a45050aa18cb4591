/**
 * The one hook through which a scheduler can interpose at every shared-memory step of the vCPU
 * loop and of the protocol (fault, push, harvest, reset, flush). In free-running mode it is
 * inactive and each call site costs one property load: `if (stepHook.active) stepHook.at(...)`.
 *
 * Each thread has its own module instance, so installing a hook affects only that thread.
 */

/** Step points. Numbers are stable: traces and replay files record them. */
export const Step = {
  /** vCPU: about to execute a guest instruction (an instruction boundary). */
  INSN_BOUNDARY: 1,
  /** vCPU: about to store to a page it believes writable (TLB hit or SPTE read). */
  GUEST_STORE: 2,
  /** vCPU fault path: about to make the SPTE writable (compare-and-swap). */
  FAULT_MAKE_WRITABLE: 3,
  /** vCPU fault path: about to mark the page dirty. */
  FAULT_MARK_DIRTY: 4,
  /** Ring push: payload stored, about to publish DIRTY. */
  PUSH_PUBLISH: 5,
  /** Ring push: entry published, about to advance dirty_index. */
  PUSH_ADVANCE: 6,
  /** vCPU: about to check requests on guest entry. */
  GUEST_ENTRY: 7,
  /** Userspace harvest: read an entry's flags, about to store RESET. */
  HARVEST_ENTRY: 8,
  /** Reset ioctl: about to consume one entry. */
  RESET_ENTRY: 9,
  /** Reset ioctl: about to re-protect a coalesced batch. */
  RESET_REPROTECT: 10,
  /** Remote TLB flush: requests posted, about to wait for acknowledgements. */
  TLB_FLUSH_WAIT: 11,
  /** Userspace: about to copy / read a page's contents. */
  USER_READ_PAGE: 12,
  /** A lock acquisition is about to block. */
  LOCK_WAIT: 13,
  /** Bitmap: about to set a bit / exchange a word. */
  BITMAP_UPDATE: 14,
  /**
   * Weak memory model: a load of location a may read one of b stores; the scheduler decides
   * which (not a scheduling point: the same participant continues at once).
   */
  READ_FROM: 15,
  /**
   * A harvester of the SDK (src/harvester/) is about to make one access to a ring entry through
   * its accessors: a = the entry's free-running index, b = which access (HarvesterAccess).
   */
  HARVESTER_ACCESS: 16,
} as const;
export type StepPoint = (typeof Step)[keyof typeof Step];

export interface StepHook {
  active: boolean;
  /** Called at a step point with up to two numeric arguments (a page, an index...). */
  at(step: StepPoint, a: number, b: number): void;
}

function noop(_step: StepPoint, _a: number, _b: number): void {}

export const stepHook: StepHook = { active: false, at: noop };

/**
 * Step points kept active with no hook installed: coverage recording (kernel/coverage.ts) sits
 * inside the `if (stepHook.active)` blocks of the hottest paths, so that it costs those paths
 * nothing while nobody records. Then every step point calls the no-op hook.
 */
let pinned = false;

export function installStepHook(fn: (step: StepPoint, a: number, b: number) => void): void {
  stepHook.at = fn;
  stepHook.active = true;
}

export function clearStepHook(): void {
  stepHook.active = pinned;
  stepHook.at = noop;
}

/** Keep this thread's step points active while `on`, whether or not a hook is installed. */
export function pinStepPoints(on: boolean): void {
  pinned = on;
  stepHook.active = on || stepHook.at !== noop;
}

/** A step hook described as plain data, so that it can cross postMessage to a worker thread. */
export interface StepHookSpec {
  /** A kind some module registered (registerStepHookKind). */
  readonly kind: string;
  readonly params: unknown;
}

type StepHookFn = (step: StepPoint, a: number, b: number) => void;
const kinds = new Map<string, (params: unknown) => StepHookFn>();

/**
 * Make a kind of step hook buildable from data in this thread. The layer that defines the hook
 * (the stress harness's perturbation, say) registers it; a worker entry imports that module, so
 * the thread code that installs hooks never depends on who defines them.
 */
export function registerStepHookKind(kind: string, factory: (params: unknown) => StepHookFn): void {
  kinds.set(kind, factory);
}

/** Install the hook `spec` describes in this thread, or clear this thread's hook when there is none. */
export function installStepHookSpec(spec: StepHookSpec | undefined): void {
  if (spec === undefined) {
    clearStepHook();
    return;
  }
  const factory = kinds.get(spec.kind);
  if (factory === undefined) throw new Error(`step hook kind '${spec.kind}' is not registered in this thread`);
  installStepHook(factory(spec.params));
}
