/**
 * GET and CLEAR through a slot's plan (src/kernel/dirty-log-plan.ts) against the general path
 * of dirty-log-ioctl.ts. Twin VMs with a slot large enough for the SIMD scan run the same
 * random commands; one passes Uint32Array buffers (the plan answers once it exists), the other
 * Uint8Array buffers (always the general path). Their results, errors, page protections and
 * statistics must agree after every command. Then the cases where a plan must step aside: a
 * slot deleted or no longer logging, a mutant, a vCPU created after the plan was made.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from '../../../src/abi/constants.js';
import { SCAN_BLOCK_BYTES } from '../../../src/kernel/bitmap-simd-scan.js';
import { bitmapPages, bitmapWords, maskFromPages } from '../../../src/kernel/dirty-bitmap.js';
import { BitmapLogPlan } from '../../../src/kernel/dirty-log-plan.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { errnoOf } from '../../helpers/errno.js';
import { fuzzParams } from '../../helpers/fuzz.js';
import { SLOT, bitmapVm } from './bitmap-fixtures.js';

/** 1 GiB and a tail of 2 64-page words plus 10 pages: the SIMD scan, and a tail after its blocks. */
const PAGES = 262144 + 2 * 64 + 10;
const WORDS = bitmapWords(PAGES);
const BLOCK_PAGES = SCAN_BLOCK_BYTES * 8;
/** Pages at word, block and slot boundaries, where a scan is likeliest to be off by one. */
const EDGE_PAGES = [0, 1, 31, 32, 63, 64, BLOCK_PAGES - 1, BLOCK_PAGES, 3 * BLOCK_PAGES + 33, 262143, 262144, 262144 + 64, PAGES - 1];

type Twin = ReturnType<typeof twin>;

/** One side: `wide` passes Uint32Array buffers, otherwise Uint8Array views of the same size. */
function twin(wide: boolean) {
  const side = bitmapVm({ pages: PAGES });
  expect(side.slot.bitmapScan).not.toBeNull();
  const buffer = (words: number): Uint32Array | Uint8Array => (wide ? new Uint32Array(words) : new Uint8Array(words * 4));
  return { ...side, buffer, touched: new Set<number>() };
}

type Command =
  | { kind: 'store'; pages: number[] }
  | { kind: 'get'; shortBy: number }
  | { kind: 'clear'; first: number; num: number; rel: number[]; stored: number; shortBy: number }
  | { kind: 'manual'; on: boolean }
  | { kind: 'logging'; on: boolean };

/** What a command did on one side: the pages a GET returned, or the errno. */
function run(t: Twin, c: Command): unknown {
  switch (c.kind) {
    case 'store':
      for (const p of c.pages) t.touched.add(p);
      t.store(...c.pages);
      return null;
    case 'get': {
      const out = t.buffer(WORDS - c.shortBy);
      out.fill(0xa5); // GET overwrites every byte of the slot's bitmap, set or not
      const errno = errnoOf(() => t.vm.getDirtyLog(SLOT, out));
      return errno ?? bitmapPages(new Uint32Array(out.buffer));
    }
    case 'clear': {
      // The mask names `rel` and, every `stored`-th, the pages stored to in the range (those
      // whose bits may be set), so that CLEARs take one bit, many, or none.
      const inRange = [...t.touched].filter((p) => p >= c.first && p < c.first + c.num).sort((a, b) => a - b);
      const named = [...c.rel, ...inRange.filter((_, i) => c.stored > 0 && i % c.stored === 0).map((p) => p - c.first)];
      const words = Math.max(2, bitmapWords(c.num) - c.shortBy);
      const mask = t.buffer(words);
      new Uint32Array(mask.buffer).set(maskFromPages(c.num, named).subarray(0, words));
      return errnoOf(() => t.vm.clearDirtyLog(SLOT, c.first, c.num, mask));
    }
    case 'manual':
      t.vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, c.on ? KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE : 0);
      return null;
    case 'logging':
      return errnoOf(() => t.vm.setLogDirty(1, c.on));
  }
}

/** Everything the two paths must agree on besides a command's own result. */
function state(t: Twin) {
  const s = t.vm.stats();
  const writable = [...t.touched].filter((p) => (Atomics.load(t.slot.spte, p) & SpteBits.WRITABLE) !== 0).sort((a, b) => a - b);
  return {
    writable,
    getCalls: s.getCalls,
    clearCalls: s.clearCalls,
    pagesReprotected: s.pagesReprotected,
    tlbFlushes: s.tlbFlushes,
    mmuLockAcquires: s.mmuLockAcquires,
  };
}

const page = fc.oneof(fc.constantFrom(...EDGE_PAGES), fc.nat(PAGES - 1));
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.array(page, { minLength: 1, maxLength: 20 }).map((pages) => ({ kind: 'store' as const, pages })) },
  { weight: 3, arbitrary: fc.constantFrom(0, 0, 0, 1).map((shortBy) => ({ kind: 'get' as const, shortBy })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        // Mostly ranges the checks accept (whole 64-page words, or up to the slot's end), and some they refuse.
        fc.oneof(
          { weight: 3, arbitrary: fc.nat(PAGES >>> 6).map((word) => word * 64) },
          { weight: 1, arbitrary: fc.oneof(fc.constantFrom(1, 100, PAGES + 64), fc.nat(PAGES + 64)) },
        ),
        fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 * BLOCK_PAGES }).map((n) => Math.ceil(n / 64) * 64) },
          { weight: 2, arbitrary: fc.constant(-1) },
          { weight: 1, arbitrary: fc.oneof(fc.constantFrom(0, 72, 138, PAGES), fc.nat(PAGES + 64)) },
        ),
        fc.array(fc.oneof(fc.nat(128), fc.nat(PAGES)), { maxLength: 20 }),
        fc.constantFrom(0, 1, 1, 2, 100),
        fc.constantFrom(0, 0, 0, 0, 1),
      )
      // num -1: the rest of the slot from first.
      .map(([first, num, rel, stored, shortBy]) => ({ kind: 'clear' as const, first, num: num < 0 ? Math.max(0, PAGES - first) : num, rel, stored, shortBy })),
  },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ kind: 'manual' as const, on })) },
  { weight: 1, arbitrary: fc.boolean().map((on) => ({ kind: 'logging' as const, on })) },
);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a slot planned GET and CLEAR against the general path', () => {
  it('agree on every result, error, protection and statistic, command by command', () => {
    const answeredGet = vi.spyOn(BitmapLogPlan.prototype, 'tryGet');
    const answeredClear = vi.spyOn(BitmapLogPlan.prototype, 'tryClear');
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 25 }), (commands) => {
        const planned = twin(true);
        const general = twin(false);
        for (const [i, c] of commands.entries()) {
          const what = `command ${i}: ${JSON.stringify(c)}`;
          expect(run(planned, c), what).toEqual(run(general, c));
          expect(state(planned), what).toEqual(state(general));
        }
      }),
      fuzzParams(1770, 40),
    );
    // The property is only worth something if the plan answered: GETs and CLEARs of each kind.
    expect(answeredGet.mock.results.filter((r) => r.value === true).length).toBeGreaterThan(4);
    expect(answeredClear.mock.results.filter((r) => r.value === true).length).toBeGreaterThan(4);
  });
});

describe('a plan steps aside', () => {
  it('once its slot is deleted, stops logging or is recreated', () => {
    const side = bitmapVm({ pages: PAGES });
    const out = new Uint32Array(WORDS);
    side.store(5);
    side.vm.getDirtyLog(SLOT, out);
    side.vm.setLogDirty(1, false);
    expect(errnoOf(() => side.vm.getDirtyLog(SLOT, out))).toBe('ENOENT');
    expect(errnoOf(() => side.vm.clearDirtyLog(SLOT, 0, 64, out))).toBe('ENOENT');
    side.vm.deleteMemslot(1);
    expect(errnoOf(() => side.vm.getDirtyLog(SLOT, out))).toBe('ENOENT');
    const again = side.vm.createMemslot({ id: 1, baseGfn: side.slot.baseGfn, pageCount: PAGES, logDirty: true });
    side.vm.markPageDirtyNoVcpu(again, PAGES - 1);
    side.vm.getDirtyLog(SLOT, out);
    expect(bitmapPages(out)).toEqual([PAGES - 1]);
  });

  it('for a mutant: legacy-get-no-protect still leaves the pages writable', () => {
    const side = bitmapVm({ pages: PAGES, mutants: Mutant.LEGACY_GET_NO_PROTECT });
    const answered = vi.spyOn(BitmapLogPlan.prototype, 'tryGet');
    side.store(7);
    expect(side.get()).toEqual([7]);
    side.store(BLOCK_PAGES);
    expect(side.get()).toEqual([BLOCK_PAGES]);
    expect(Atomics.load(side.slot.spte, 7) & SpteBits.WRITABLE).toBe(SpteBits.WRITABLE);
    expect(answered.mock.results.map((r) => r.value)).toEqual([false]);
  });

  it('for no vCPU: one created after the plan still gets the TLB flush request', () => {
    const side = bitmapVm({ pages: PAGES });
    side.store(3);
    expect(side.get()).toEqual([3]);
    side.vm.createVcpu();
    const late = side.vm.vcpuBlock(1).i32;
    Atomics.and(late, VcpuLayout.words.REQUESTS, ~VcpuRequest.TLB_FLUSH);
    const posts = Atomics.load(late, VcpuLayout.words.REQUEST_POSTS);
    side.store(4);
    expect(side.get()).toEqual([4]);
    expect(Atomics.load(late, VcpuLayout.words.REQUESTS) & VcpuRequest.TLB_FLUSH).toBe(VcpuRequest.TLB_FLUSH);
    expect(Atomics.load(late, VcpuLayout.words.REQUEST_POSTS)).toBe(posts + 1);
  });
});
