/** A bitmap-logging VM driven in this thread: one logged slot, one vCPU, store/GET/CLEAR helpers. */
import { KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, encodeSlot } from '../../../src/abi/constants.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { bitmapPages, bitmapWords, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';

export const BASE = 0x40000;
export const SLOT = encodeSlot(0, 1);

export function bitmapVm(opts: { pages?: number; manual?: number; mutants?: number; logDirty?: boolean } = {}) {
  const vm = Vm.create({ mutants: opts.mutants ?? 0 });
  if (opts.manual !== undefined) vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, opts.manual);
  const pages = opts.pages ?? 100;
  const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: pages, logDirty: opts.logDirty ?? true });
  vm.createVcpu();
  const vcpu = new Vcpu(vm, 0);
  const prog = new ScriptedProgram();
  const store = (...offsets: number[]): void => {
    prog.enqueue(offsets.map((o) => BASE + o));
    vcpu.run(prog);
  };
  const get = (): number[] => {
    const out = new Uint32Array(bitmapWords(pages));
    vm.getDirtyLog(SLOT, out);
    return bitmapPages(out);
  };
  const clear = (first: number, num: number, rel: number[]): void =>
    vm.clearDirtyLog(SLOT, first, num, maskFromPages(num, rel));
  return { vm, slot, store, get, clear, pages };
}
