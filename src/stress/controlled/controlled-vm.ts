/**
 * The VM of a controlled run, built in the main thread before any participant starts: the
 * logging capability, one logged memslot, the vCPUs. Participants attach to its buffers.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { FIRST_SLOT_ID, buildGuestVm } from '../../userspace/guest-fleet.js';
import type { ControlledScenario } from './scenario.js';


/** The same VM a free run builds, with one memslot of the scenario's pages. */
export function buildControlledVm(s: ControlledScenario, mutants: number): Vm {
  const { vm } = buildGuestVm(
    {
      log: s.log,
      ringEntries: s.ringEntries,
      ringWithBitmap: false,
      initiallySet: false,
      mutants,
      memoryBytes: s.pages * PAGE_SIZE,
      memslots: 1,
      vcpus: s.vcpus,
    },
    true,
  );
  return vm;
}

export function dataSlot(vm: Vm): Memslot {
  const slot = vm.memslots.findById(0, FIRST_SLOT_ID);
  if (!slot) throw new Error('controlled run: the data memslot is missing');
  return slot;
}
