/**
 * A 1 GiB slot's bitmap in the browser: the page's own VM gets the SIMD scan (a shared
 * WebAssembly.Memory) and its GET and CLEAR agree with the same slot scanning in JavaScript;
 * then a bitmap run and a clear run of 1 GiB with vCPUs in module Web Workers, which receive
 * the Memory with the slot's buffers, lose no page.
 */
import { KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from '../../../src/abi/constants.js';
import { bitmapPages, bitmapWords, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { Vm } from '../../../src/kernel/vm.js';
import { runDirtyLog } from '../../../src/harness/run.js';
import { type TestPage, harnessHooks, numberParam } from './test-page.js';

const GIB = 1024 * 1024 * 1024;
const PAGES = GIB / 4096;
const DIRTY = [0, 63, 64, 511, 512, 100_000, PAGES - 1];

/** GET, then CLEAR of every other page, on one VM; the pages each returned. */
function getThenClear(simd: boolean): { scan: boolean; got: number[]; left: number[] } {
  const vm = Vm.create();
  vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
  const slot = vm.createMemslot({ id: 1, baseGfn: 0x40000, pageCount: PAGES, logDirty: true });
  const scan = slot.bitmapScan !== null;
  if (!simd) slot.bitmapScan = null;
  for (const p of DIRTY) vm.markPageDirtyNoVcpu(slot, p);
  const out = new Uint32Array(bitmapWords(PAGES));
  vm.getDirtyLog(slot.encodedSlot, out);
  const got = bitmapPages(out);
  vm.clearDirtyLog(slot.encodedSlot, 0, PAGES, maskFromPages(PAGES, DIRTY.filter((_, i) => i % 2 === 0)));
  vm.getDirtyLog(slot.encodedSlot, out);
  return { scan, got, left: bitmapPages(out) };
}

export const page: TestPage = {
  title: 'a 1 GiB slot bitmap scanned in SIMD',
  run: async (params, progress) => {
    const simd = getThenClear(true);
    const js = getThenClear(false);
    progress(`scan in SIMD: ${simd.scan}`);
    const runs: Record<string, { lostPages: number; iterations: number; error: string | null }> = {};
    for (const log of ['bitmap', 'clear'] as const) {
      const s = await runDirtyLog(
        { log, vcpus: 2, iterations: numberParam(params, 'iterations', 3), memoryBytes: GIB, seed: numberParam(params, 'seed', 1) },
        harnessHooks(progress),
      );
      runs[log] = { lostPages: s.lostPages, iterations: s.iterations, error: s.error };
    }
    return { simd, js, runs, error: null };
  },
};
