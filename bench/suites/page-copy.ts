/**
 * 4. Page copy during migration: PageCopier.copy (src/userspace/page-copy.ts) moving a list of
 * pages from a 128 MiB memslot's memory to a mirror SharedArrayBuffer, against a plain
 * `dst.set(src.subarray(page), offset)` copy of the same pages in the same order. The list is
 * half the slot's pages in a seeded random order (dirty pages arrive in fault order); every
 * source page was written first, so both copies read resident memory. Unit: pages/s.
 */
import { PAGE_SIZE } from '../../src/abi/constants.js';
import { Prng } from '../../src/base/prng.js';
import { Vm } from '../../src/kernel/vm.js';
import { PageCopier, pageWordsEqual } from '../../src/userspace/page-copy.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';

const SLOT_PAGES = 32768; // 128 MiB

export const pageCopySuite: Suite = {
  id: 'page-copy',
  title: '4. page copy (migration)',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const repeats = ctx.quick ? 7 : 15;
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 1 << 18, pageCount: SLOT_PAGES, logDirty: true });
    const mem = slot.mem32;
    for (let i = 0; i < mem.length; i += 256) mem[i] = Math.imul(i, 0x9e3779b1) >>> 0;
    const dst = new SharedArrayBuffer(SLOT_PAGES * PAGE_SIZE);
    new Uint8Array(dst).fill(1); // resident, like the slot
    // Half the pages, shuffled (Fisher–Yates with the project's PRNG).
    const perm = new Uint32Array(SLOT_PAGES);
    for (let i = 0; i < SLOT_PAGES; i++) perm[i] = i;
    const prng = new Prng(0x5eed);
    for (let i = SLOT_PAGES - 1; i > 0; i--) {
      const j = prng.below(i + 1);
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    }
    const count = SLOT_PAGES / 2;
    const pages = perm.subarray(0, count);
    const copier = PageCopier.fromSlot(slot, dst);
    const src8 = slot.memBytes;
    const dst8 = new Uint8Array(dst);
    const viaCopier = (): number => {
      const t0 = now();
      copier.copy(pages, count);
      return count / ((now() - t0) / 1000);
    };
    const viaSet = (): number => {
      const t0 = now();
      for (let i = 0; i < count; i++) {
        const o = pages[i]! * PAGE_SIZE;
        dst8.set(src8.subarray(o, o + PAGE_SIZE), o);
      }
      return count / ((now() - t0) / 1000);
    };
    for (let w = 0; w < 2; w++) {
      viaCopier();
      viaSet();
    }
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < repeats; r++) {
      if (r % 2 === 0) {
        a.push(viaCopier());
        b.push(viaSet());
      } else {
        b.push(viaSet());
        a.push(viaCopier());
      }
    }
    // The copier's copy must be exact: poison the mirror, copy once more (not timed) and compare
    // every word of every copied page.
    dst8.fill(0xa5);
    copier.copy(pages, count);
    const d32 = new Int32Array(dst);
    const s32 = new Int32Array(slot.buffers.memory);
    for (let i = 0; i < count; i++) {
      const w = (pages[i]! * PAGE_SIZE) / 4;
      if (!pageWordsEqual(s32, w, d32, w)) throw new Error(`page copy: page ${pages[i]} differs after PageCopier.copy`);
    }
    ctx.reporter.add({
      id: 'page-copy.vs-typedarray-set',
      section,
      name: `copy ${count} random pages of a 128 MiB slot (PageCopier)`,
      unit: 'pages/s',
      better: 'higher',
      samples: a,
      baseline: { name: 'TypedArray.set per page', samples: b },
      target: { text: '≥ 70 % of TypedArray.set', minRatio: 0.7 },
      extra: { pages: count, slotPages: SLOT_PAGES },
    });
  },
};
