/**
 * The VM of a controlled run, built in the main thread before any participant starts: the
 * logging capability, the scenario's logged memslots (SMRAM in address space 1 last), the
 * vCPUs and where their rings start (in a WebAssembly harvester's memory when the user's
 * harvester is one: loaded in this thread before the campaign). Participants attach to its buffers.
 */
import { PAGE_SIZE, SMM_AS_ID } from '../../abi/constants.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { FIRST_SLOT_ID, buildGuestVm } from '../../userspace/guest-fleet.js';
import { ringSpaceAt } from '../harvester-source.js';
import type { ControlledScenario } from './scenario.js';
import { slotLayout } from './scenario-slots.js';

/** The same VM a free run builds, with the scenario's memslots. */
export function buildControlledVm(s: ControlledScenario, mutants: number): Vm {
  const at = slotLayout(s);
  const { vm } = buildGuestVm(
    {
      log: s.log,
      ringEntries: s.ringEntries,
      ringWithBitmap: false,
      initiallySet: false,
      mutants,
      memoryBytes: (s.pages - at.smm) * PAGE_SIZE,
      memslots: at.ram.length,
      slotPages: at.ram,
      smmPages: at.smm,
      ringStart: at.ringStart,
      vcpus: s.vcpus,
      ringCapOriginal: s.ringCap === 'ring',
    },
    true,
    s.userHarvester !== undefined ? ringSpaceAt(s.userHarvester) : undefined,
  );
  return vm;
}

/** The scenario's memslots in page order: the RAM slots, then SMRAM. */
export function dataSlots(vm: Vm, s: ControlledScenario): Memslot[] {
  const at = slotLayout(s);
  const slots = at.ram.map((_, i) => vm.memslots.findById(0, FIRST_SLOT_ID + i));
  if (at.smm > 0) slots.push(vm.memslots.findById(SMM_AS_ID, FIRST_SLOT_ID));
  if (slots.some((x) => x === null)) throw new Error('controlled run: a data memslot is missing');
  return slots as Memslot[];
}
