/** Harvest of a ring VM's rings in the vCPU tests, with one cursor per VM and vCPU. */
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import type { ringVm } from '../../helpers/vm-fixtures.js';

const cursors = new WeakMap<object, { fetchIndex: number }[]>();

/** The offsets vCPU `vcpu` pushed since the last harvest (at most `max`). */
export function harvestAll(fx: ReturnType<typeof ringVm>, vcpu = 0, max = 1 << 20): number[] {
  const offsets: number[] = [];
  const cursor = cursors.get(fx.vm) ?? [];
  cursors.set(fx.vm, cursor);
  cursor[vcpu] ??= { fetchIndex: 0 };
  harvestRing(fx.vm.mmapRing(vcpu), cursor[vcpu]!, max, (_s, lo) => offsets.push(lo));
  return offsets;
}
