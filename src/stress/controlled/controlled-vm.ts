/**
 * The VM of a controlled run, built in the main thread before any participant starts: the
 * logging capability, one logged memslot, the vCPUs. Participants attach to its buffers.
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { buildGuestVm } from '../../userspace/guest-fleet.js';
import type { ControlledScenario } from './scenario.js';

/**
 * The logged memslot's id: the first data slot buildGuestVm creates (its FIRST_SLOT_ID, which
 * guest-fleet.ts does not export), at 1 GiB of guest physical memory like the runs' slots.
 */
const DATA_SLOT_ID = 1;

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
  const slot = vm.memslots.findById(0, DATA_SLOT_ID);
  if (!slot) throw new Error('controlled run: the data memslot is missing');
  return slot;
}
