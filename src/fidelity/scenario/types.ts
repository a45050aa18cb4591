/**
 * The scenario and result types of the fidelity feature, and the limits a scenario must keep.
 * The contract these types carry (setup order, how `run` treats exits, what each result holds) is
 * described in ../scenario.ts. No Node imports: the module also runs in a browser.
 */
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
} from '../../abi/constants.js';

export type WritePath = 'fault' | 'emulated';
export type CapName = 'dirtyRing' | 'dirtyRingAcqRel' | 'manualProtect' | 'dirtyRingWithBitmap';

/** Scenario capability names → KVM capability numbers. The key order is the one error messages list. */
export const CAP_NUMBERS: Readonly<Record<CapName, number>> = {
  dirtyRing: KVM_CAP_DIRTY_LOG_RING,
  dirtyRingAcqRel: KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  manualProtect: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  dirtyRingWithBitmap: KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
};

/** Memslot id the kvm runner keeps for its own memory (native/kvm-runner.c, RUNNER_SLOT). */
export const RUNNER_SLOT = 32763;
/** Guest-physical addresses below this belong to the kvm runner (its RUNNER_LIMIT). */
export const RUNNER_GPA_LIMIT = 1 << 30;
/** Upper bound of guest-physical addresses a scenario may use (48-bit physical width). */
export const GPA_LIMIT = 2 ** 48;
/** vCPUs a scenario may create: more than any scenario needs, and within the runner's 64. */
export const MAX_VCPUS = 16;
/** Pages one declared memslot may have (8 GiB). */
export const MAX_SLOT_PAGES = 1 << 21;
/**
 * Highest memslot id a scenario may declare or store to: the u16 id up to SHRT_MAX (the kernel's
 * KVM_MEM_SLOTS_NUM), past KVM_USER_MEM_SLOTS, so that a scenario can check the kernel's EINVAL.
 */
export const MAX_DECLARED_SLOT_ID = 0x7fff;
/** Highest address space a memslot may name: x86 has two (the second for SMM). */
export const MAX_DECLARED_AS_ID = 1;

export interface Memslot {
  slot: number;
  asId: number;
  /** Guest-physical base address, page aligned. */
  gpa: number;
  pages: number;
  logDirty: boolean;
}

export interface VmConfig {
  /** `bytes` is the u64 args[0] of the enable (the kernel truncates it to u32). */
  ring?: { bytes: bigint; acqRel: boolean };
  /** args[0] of KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2; 0 = not enabled. */
  manualProtect: number;
}

export interface WriteStep { op: 'write'; vcpu: number; slot: number; asId: number; pages: number[]; storesPerPage: number; exitEach: boolean }
export interface ReadStep { op: 'read'; vcpu: number; slot: number; asId: number; pages: number[]; exitEach: boolean }
export interface RunStep { op: 'run'; vcpu: number; stopOnIo: boolean }
/** `max` undefined = no limit. */
export interface HarvestStep { op: 'harvest'; vcpu: number; max?: number; flagsValue: number }
export interface ResetStep { op: 'reset' }
export interface GetDirtyLogStep { op: 'getDirtyLog'; slot: number; asId: number; nullBitmap: boolean }
export interface ClearDirtyLogStep { op: 'clearDirtyLog'; slot: number; asId: number; first: number; num: number; pages: number[]; nullBitmap: boolean }
/** Re-registers a declared memslot with or without the log flag, or deletes it. */
export interface SetMemslotStep { op: 'setMemslot'; slot: number; asId: number; logDirty: boolean; delete: boolean }
/** `bytes` (ring caps) and `flags` (manual protect, ring-with-bitmap) both go to args[0]. */
export interface EnableCapStep { op: 'enableCap'; cap: CapName; bytes?: bigint; flags?: number; capFlags: number }
export interface CreateVcpuStep { op: 'createVcpu' }
export interface WriteEntryStep { op: 'writeEntry'; vcpu: number; index: number; flags?: number; slot?: number; offset?: bigint }
export interface ReadEntryStep { op: 'readEntry'; vcpu: number; index: number }
export interface CheckExtensionStep { op: 'checkExtension'; cap: CapName }
export interface MmapRingStep { op: 'mmapRing'; vcpu: number; shared: boolean; write: boolean; exec: boolean }

export type Step =
  | WriteStep | ReadStep | RunStep | HarvestStep | ResetStep | GetDirtyLogStep | ClearDirtyLogStep
  | SetMemslotStep | EnableCapStep | CreateVcpuStep | WriteEntryStep | ReadEntryStep | CheckExtensionStep
  | MmapRingStep;
export type StepOp = Step['op'];
/** The step of one op, e.g. `StepOf<'run'>` is `RunStep`. */
export type StepOf<K extends StepOp> = Extract<Step, { op: K }>;

export interface Scenario {
  name: string;
  description?: string;
  path: WritePath;
  vm?: VmConfig;
  memslots: Memslot[];
  vcpus: number;
  steps: Step[];
}

/** The memslot declared with this id in this address space, if any. */
export function findMemslot(memslots: readonly Memslot[], slot: number, asId: number): Memslot | undefined {
  return memslots.find((m) => m.slot === slot && m.asId === asId);
}

/** True when the scenario performs guest accesses, i.e. its results can depend on the write path. */
export function hasGuestAccesses(s: Scenario): boolean {
  return s.steps.some((st) => st.op === 'write' || st.op === 'read');
}

// ---- results ----

export type ExitName = 'hlt' | 'dirty_ring_full' | 'io' | `other:${number}`;
/** `offset` is a decimal string when above Number.MAX_SAFE_INTEGER. */
export interface DirtyEntry { slot: number; offset: number | string }
export interface RawEntry { flags: number; slot: number; offset: number | string }

export interface OkResult {
  rc: 0;
  exit?: ExitName;
  entries?: DirtyEntry[];
  count?: number;
  pages?: number[];
  value?: number;
  entry?: RawEntry;
}
export interface ErrResult { errno: string }
export type StepResult = OkResult | ErrResult;
export interface NotComparable { notComparable: string }

export function isNotComparable(r: StepResult[] | NotComparable): r is NotComparable {
  return !Array.isArray(r);
}

/** Offsets as results carry them: a number when it is a safe integer, else a decimal string. */
export function offsetValue(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}
