/**
 * What each known-bug mutant needs to be exposed, and within how many runs the harness must
 * catch it. A mutant is only as visible as the scenario lets it be: a harvester bug needs a
 * harvester that takes the buggy path (unaligned CLEARs, a hostile userspace), a ring overflow
 * needs more pushes than a ring holds, a once-in-61 skip needs 61 entries. The constraints
 * below say so, per mode; everything else stays random.
 *
 * `bound` is the stated number of runs within which a mutant campaign must catch the mutant
 * (the campaign stops at the first catch, and reports NOT CAUGHT past the bound). Controlled
 * runs are deterministic, so for a given campaign seed the run that catches is always the
 * same. The bounds are about twice the worst case measured over 40 campaign seeds (controlled,
 * random strategy) and over 8 (free-running); README "Stress testing" lists the measurements.
 */
import { MUTANT_NAMES, Mutant } from '../userspace/known-bugs.js';
import type { StressMode } from './stress-mode.js';
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import type { ScenarioRequest } from './controlled/scenario.js';
import type { FreeRequest } from './free/free-scenario.js';

export interface MutantProfile {
  /** CLI name, e.g. `dirty-before-writable`. */
  readonly name: string;
  readonly bit: number;
  /** Controlled-mode scenario constraints. */
  readonly controlled: ScenarioRequest;
  /** The memory model controlled campaigns of this mutant need (an ordering bug: a weak one). */
  readonly memoryModel?: MemoryModel;
  /** Free-mode scenario constraints. */
  readonly free: FreeRequest;
  /** Runs within which each mode must catch it. */
  readonly bound: { readonly free: number; readonly controlled: number };
  /** How it shows up when caught. */
  readonly symptom: string;
  /**
   * Modes that do not model the mutated code at all, with the reason: their campaigns are
   * reported as not applicable (never as caught) and left out of that mode's score.
   */
  readonly notModelledIn?: Partial<Record<StressMode, string>>;
}

const microRing: ScenarioRequest = { shape: 'micro', log: 'ring', harvester: 'standard', emulated: false };

/**
 * Ordering bugs: JS Atomics are sequentially consistent, so real threads never show them; only
 * the weak memory model of controlled runs (arm64: x86's TSO hides every one of them) does.
 */
const ORDERING_NOT_MODELLED = {
  free: 'an ordering bug: free-running threads use JS Atomics, which are sequentially consistent; it needs the arm64 model of controlled runs',
} as const;
/** The 2022 shape: a reset thread walking the ring while the harvester marks more entries RESET. */
const RESET_THREAD: ScenarioRequest = { shape: 'micro', log: 'ring', harvester: 'standard', emulated: false, resetter: 'thread', ringCap: 'ring-acqrel' };

/**
 * Page write-tracking runs notifier threads and notification rings that the controlled
 * scheduler's participants do not include; free runs track pages of a small guest
 * over many iterations, so that tracked pages are rewritten often (a stale TLB entry, say,
 * needs a vCPU to store to a page just after tracking started).
 */
const TRACK_FREE: FreeRequest = { track: { pages: 64 }, memoryMiB: [1], iterations: [12, 16] };
const TRACK_NOT_MODELLED = {
  controlled: 'the controlled scheduler does not model page write-tracking (notifiers, notification rings)',
} as const;

/** Bounds of the ordering mutants (controlled runs, arm64; see the README for the measurement). */
const PUSH_NO_WMB_BOUND = 100;
const RESET_RELAXED_FLAGS_BOUND = 500;
const HARVEST_RELAXED_RESET_BOUND = 500;
const HARVEST_RELAXED_FLAGS_BOUND = 60;
const FAULT_RELAXED_WRITABLE_BOUND = 90;

export const MUTANT_PROFILES: readonly MutantProfile[] = [
  {
    name: 'dirty-before-writable',
    bit: Mutant.DIRTY_BEFORE_WRITABLE,
    controlled: microRing,
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 40, controlled: 300 },
    symptom: 'a harvest + reset between the record and the SPTE update leaves a writable page with no record',
  },
  {
    name: 'flags-before-payload',
    bit: Mutant.FLAGS_BEFORE_PAYLOAD,
    controlled: { shape: 'micro', log: 'ring', harvester: 'standard' },
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 20, controlled: 100 },
    symptom: 'the harvester reads a stale slot/offset: a bad entry, and the real page is never reported',
  },
  {
    name: 'harvest-skips-entry',
    bit: Mutant.HARVEST_SKIPS_ENTRY,
    controlled: { shape: 'sweep', log: 'ring', harvester: 'standard' },
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 10, controlled: 3 },
    symptom: 'every 61st harvested entry is dropped: its page is reset and never reported',
  },
  {
    name: 'copy-before-reset',
    bit: Mutant.COPY_BEFORE_RESET,
    controlled: microRing,
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 10, controlled: 150 },
    symptom: 'a store between the copy and the reset reaches guest memory but not the destination',
  },
  {
    name: 'no-final-stop',
    bit: Mutant.NO_FINAL_STOP,
    controlled: { shape: 'micro', log: 'ring', harvester: 'standard', drain: false },
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 10, controlled: 30 },
    symptom: 'stores after the last sync are verified as lost',
  },
  {
    name: 'legacy-get-no-protect',
    bit: Mutant.LEGACY_GET_NO_PROTECT,
    controlled: { shape: 'micro', log: 'bitmap', harvester: 'standard', emulated: false },
    free: { log: 'bitmap', harvester: 'standard' },
    bound: { free: 10, controlled: 30 },
    symptom: 'pages stay writable after GET: later stores are never logged',
  },
  {
    name: 'reset-wrap-check',
    bit: Mutant.RESET_WRAP_CHECK,
    controlled: { shape: 'micro', harvester: 'hostile-wrap', collections: 0, drain: true },
    free: { harvester: 'hostile-wrap' },
    bound: { free: 10, controlled: 5 },
    symptom: 'a hostile userspace\'s wrapped pair passes the range check: the rmap is indexed out of bounds (kernel bug)',
  },
  {
    name: 'late-soft-full',
    bit: Mutant.LATE_SOFT_FULL,
    controlled: { shape: 'flood', log: 'ring', harvester: 'standard', collections: 0, drain: true },
    free: { log: 'ring', harvester: 'standard', ringEntries: [256, 512] },
    bound: { free: 10, controlled: 3 },
    symptom: 'pushes run past the ring (kernel WARN), entries are overwritten, the vCPU wedges',
  },
  {
    name: 'clear-unaligned',
    bit: Mutant.CLEAR_UNALIGNED,
    controlled: { shape: 'micro', harvester: 'unaligned-clear', emulated: false, maxPages: 2 },
    free: { harvester: 'unaligned-clear' },
    bound: { free: 30, controlled: 400 },
    symptom: 'an unaligned CLEAR clears and protects the wrong pages: a store made after GET is lost',
  },
  {
    name: 'no-tlb-flush',
    bit: Mutant.NO_TLB_FLUSH,
    controlled: microRing,
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 10, controlled: 30 },
    symptom: 'a stale TLB entry lets a store skip the fault after the reset re-protected the page',
  },
  {
    name: 'flush-no-wait',
    bit: Mutant.FLUSH_NO_WAIT,
    controlled: microRing,
    free: { log: 'ring', harvester: 'standard' },
    bound: { free: 20, controlled: 500 },
    symptom: 'a store through a stale TLB entry lands after the copy the flush should have preceded',
  },
  {
    name: 'push-no-wmb',
    bit: Mutant.PUSH_NO_WMB,
    controlled: { shape: 'micro', log: 'ring', harvester: 'standard' },
    memoryModel: 'arm64',
    free: {},
    bound: { free: 0, controlled: PUSH_NO_WMB_BOUND },
    symptom: 'DIRTY becomes visible before slot/offset: the harvester reads a stale payload (a bad entry, the real page unreported)',
    notModelledIn: ORDERING_NOT_MODELLED,
  },
  {
    name: 'reset-relaxed-flags',
    bit: Mutant.RESET_RELAXED_FLAGS,
    controlled: RESET_THREAD,
    memoryModel: 'arm64',
    free: {},
    bound: { free: 0, controlled: RESET_RELAXED_FLAGS_BOUND },
    symptom: 'the reset walk sees RESET but not the payload behind it: it re-protects the wrong page, the real one stays writable and unlogged',
    notModelledIn: ORDERING_NOT_MODELLED,
  },
  {
    name: 'harvest-relaxed-reset',
    bit: Mutant.HARVEST_RELAXED_RESET,
    controlled: RESET_THREAD,
    memoryModel: 'arm64',
    free: {},
    bound: { free: 0, controlled: HARVEST_RELAXED_RESET_BOUND },
    symptom: 'QEMU before its 2022 fix: RESET without release, so the reset thread may read the entry\'s payload stale; a page stays writable and unlogged',
    notModelledIn: ORDERING_NOT_MODELLED,
  },
  {
    name: 'harvest-relaxed-flags',
    bit: Mutant.HARVEST_RELAXED_FLAGS,
    controlled: { shape: 'micro', log: 'ring', harvester: 'standard' },
    memoryModel: 'arm64',
    free: {},
    bound: { free: 0, controlled: HARVEST_RELAXED_FLAGS_BOUND },
    symptom: 'the harvester reads DIRTY without acquire: it may read the payload stale and report the wrong page',
    notModelledIn: ORDERING_NOT_MODELLED,
  },
  {
    name: 'fault-relaxed-writable',
    bit: Mutant.FAULT_RELAXED_WRITABLE,
    controlled: { shape: 'micro', log: 'bitmap', harvester: 'standard', emulated: false },
    memoryModel: 'arm64',
    free: {},
    bound: { free: 0, controlled: FAULT_RELAXED_WRITABLE_BOUND },
    symptom: 'writable before dirty in program order only: GET sees the dirty bit but reads the SPTE as still protected, skips the write-protect, and later stores go unlogged',
    notModelledIn: ORDERING_NOT_MODELLED,
  },
  {
    name: 'track-fault-fixes-tracked',
    bit: Mutant.TRACK_FAULT_FIXES_TRACKED,
    controlled: {},
    free: TRACK_FREE,
    bound: { free: 10, controlled: 0 },
    symptom: 'a fault makes a tracked page writable: later stores are never emulated nor notified (shadow diverges)',
    notModelledIn: TRACK_NOT_MODELLED,
  },
  {
    name: 'track-no-tlb-flush',
    bit: Mutant.TRACK_NO_TLB_FLUSH,
    controlled: {},
    free: TRACK_FREE,
    bound: { free: 20, controlled: 0 },
    symptom: 'a stale writable TLB entry bypasses emulation of a just-tracked page (no notification)',
    notModelledIn: TRACK_NOT_MODELLED,
  },
  {
    name: 'track-notify-before-write',
    bit: Mutant.TRACK_NOTIFY_BEFORE_WRITE,
    controlled: {},
    free: TRACK_FREE,
    bound: { free: 10, controlled: 0 },
    symptom: 'notifiers run before the store: the shadow copies the old bytes',
    notModelledIn: TRACK_NOT_MODELLED,
  },
  {
    name: 'track-no-grace-period',
    bit: Mutant.TRACK_NO_GRACE_PERIOD,
    controlled: {},
    free: TRACK_FREE,
    bound: { free: 10, controlled: 0 },
    symptom: 'unregister returns while a callback is in flight (a notification after it returned)',
    notModelledIn: TRACK_NOT_MODELLED,
  },
];

/**
 * A switch without a profile here (e.g. one added by another part of the emulator) is still
 * run, with unconstrained scenarios and these bounds: if nothing in the harness exposes it, it
 * shows up as NOT CAUGHT — a finding — instead of silently leaving `--mutant all`.
 */
const UNPROFILED_BOUND = { free: 20, controlled: 200 } as const;

/** The profile of a mutant switch by CLI name (a generic one for unprofiled switches). */
export function mutantProfile(name: string): MutantProfile | undefined {
  const p = MUTANT_PROFILES.find((m) => m.name === name);
  if (p) return p;
  const bit = MUTANT_NAMES[name];
  if (bit === undefined) return undefined;
  return { name, bit, controlled: {}, free: {}, bound: UNPROFILED_BOUND, symptom: 'no stress profile: unconstrained scenarios' };
}

/** Every mutant switch, in catalog order, then any switch the catalog does not know. */
export function allMutantProfiles(): MutantProfile[] {
  const extra = Object.keys(MUTANT_NAMES).filter((n) => !MUTANT_PROFILES.some((p) => p.name === n));
  return [...MUTANT_PROFILES, ...extra.map((n) => mutantProfile(n)!)];
}
