/**
 * The weak memory model of one controlled run: its shadow state is allocated by the engine
 * (sized from the VM's modelled locations and the run's control words) and installed by every
 * participant in its own thread, with its participant number as its thread id. A load with
 * several candidate stores parks at Step.READ_FROM; the engine answers with the chooser's
 * decision and grants the same participant again at once.
 */
import { Step } from '../../kernel/step-hook.js';
import type { Vm } from '../../kernel/vm.js';
import { WmmLocations } from '../../kernel/wmm/locations.js';
import { harvesterWordLocations } from '../../harvester/shared-words.js';
import { mem } from '../../kernel/wmm/mem.js';
import { WeakModel, allocateWmmState } from '../../kernel/wmm/model.js';
import { type MemoryModel, profileOf } from '../../kernel/wmm/ordering.js';
import { type Roster, participantCount } from './control-steps.js';
import { ControlWords, ParticipantMemorySync } from './memory-sync.js';
import type { ParticipantToken } from './token.js';

/** Stores kept per location: loom keeps 7, Miri 128; every ring bug found needs 2. */
export const DEFAULT_WMM_HISTORY = 8;
/** Modelled accesses logged per run, for explaining a failure (a micro-run makes a few hundred). */
const EVENT_CAPACITY = 4096;

export interface RunMemoryConfig {
  readonly model: MemoryModel;
  readonly history: number;
}

/** The run's modelled locations, numbered alike in every thread: the VM's, then a user harvester's kvm.shared words (and a C harvester's static words). */
export function runLocations(vm: Vm, harvesterWords: SharedArrayBuffer | null): WmmLocations {
  const locs = new WmmLocations(vm);
  // Its threads' hand-offs through them follow the model.
  if (harvesterWords !== null) {
    const n = harvesterWordLocations(harvesterWords);
    locs.addRegion(harvesterWords, 'shared', 0, n, n);
  }
  return locs;
}

function layout(vm: Vm, roster: Roster, globals: Int32Array, shared: Int32Array, harvesterWords: SharedArrayBuffer | null): { locs: WmmLocations; words: ControlWords } {
  const locs = runLocations(vm, harvesterWords);
  const words = new ControlWords(locs, vm, roster, globals, shared);
  return { locs, words };
}

/** The run's shadow state, or null under `sc` (no model at all). */
export function allocateRunMemory(c: RunMemoryConfig, vm: Vm, roster: Roster, globals: Int32Array, shared: Int32Array, harvesterWords: SharedArrayBuffer | null = null): SharedArrayBuffer | null {
  if (c.model === 'sc') return null;
  const { locs } = layout(vm, roster, globals, shared, harvesterWords);
  return allocateWmmState({
    threads: participantCount(roster),
    history: c.history,
    profile: profileOf(c.model),
    cumulative: true,
    locations: locs.locations,
    syncObjects: locs.syncCount,
    eventCapacity: EVENT_CAPACITY,
  });
}

/** In a participant's thread: install the model for participant `p`; its park-side synchronization. */
export function installRunMemory(
  buffer: SharedArrayBuffer,
  vm: Vm,
  roster: Roster,
  globals: Int32Array,
  shared: Int32Array,
  p: number,
  token: ParticipantToken,
  harvesterWords: SharedArrayBuffer | null = null,
): ParticipantMemorySync {
  const { locs, words } = layout(vm, roster, globals, shared, harvesterWords);
  const model = new WeakModel(buffer);
  mem.install({
    model,
    thread: p,
    bases: locs.bases,
    syncObjects: locs.syncObjects,
    decide: (loc, n) => {
      token.park(Step.READ_FROM, loc, n);
      return token.decision();
    },
  });
  return new ParticipantMemorySync(model, p, roster, words);
}

export function uninstallRunMemory(): void {
  mem.uninstall();
}
