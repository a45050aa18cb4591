/**
 * The VM of a controlled run, built in the main thread before any participant starts: the
 * logging capability, one logged memslot, the vCPUs. Participants attach to its buffers.
 */
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SIZE,
  encodeSlot,
} from '../../abi/constants.js';
import type { Memslot } from '../../kernel/memslots.js';
import { Vm } from '../../kernel/vm.js';
import type { ControlledScenario } from './scenario.js';

/** The logged memslot's id. */
export const DATA_SLOT_ID = 1;
/** It starts at 1 GiB of guest physical memory, like the runs' first data slot. */
export const DATA_SLOT_GFN = (1 << 30) / PAGE_SIZE;

export function buildControlledVm(s: ControlledScenario, mutants: number): Vm {
  const vm = Vm.create({ mutants });
  if (s.log === 'ring') vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, s.ringEntries * 16);
  else if (s.log === 'clear') vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
  vm.setUserMemoryRegion({
    slot: encodeSlot(0, DATA_SLOT_ID),
    flags: KVM_MEM_LOG_DIRTY_PAGES,
    guestPhysAddr: DATA_SLOT_GFN * PAGE_SIZE,
    memorySize: s.pages * PAGE_SIZE,
  });
  for (let v = 0; v < s.vcpus; v++) vm.createVcpu();
  return vm;
}

export function dataSlot(vm: Vm): Memslot {
  const slot = vm.memslots.findById(0, DATA_SLOT_ID);
  if (!slot) throw new Error('controlled run: the data memslot is missing');
  return slot;
}
