import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { Step, clearStepHook, installStepHook } from '../../../src/kernel/step-hook.js';
import { Vm } from '../../../src/kernel/vm.js';
import { PageCopier } from '../../../src/userspace/page-copy.js';

function filled(pages: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(pages * PAGE_SIZE);
  const w = new Uint32Array(sab);
  for (let i = 0; i < w.length; i++) w[i] = (Math.imul(i, 0x9e3779b1) ^ 0xa5a5a5a5) >>> 0;
  return sab;
}

function page(sab: SharedArrayBuffer, p: number): Uint32Array {
  return new Uint32Array(sab, p * PAGE_SIZE, PAGE_WORDS);
}

describe('PageCopier', () => {
  it('copies the listed pages to the same page numbers, in list order, and nothing else', () => {
    const src = filled(64);
    const dst = new SharedArrayBuffer(64 * PAGE_SIZE);
    const list = Uint32Array.of(7, 3, 63, 0, 3);
    expect(new PageCopier(src, dst).copy(list)).toBe(5);
    for (let p = 0; p < 64; p++) {
      if ([0, 3, 7, 63].includes(p)) expect(page(dst, p)).toEqual(page(src, p));
      else expect(page(dst, p).every((x) => x === 0)).toBe(true);
    }
  });

  it('copies a prefix of the list when given a count', () => {
    const src = filled(8);
    const dst = new SharedArrayBuffer(8 * PAGE_SIZE);
    new PageCopier(src, dst).copy([1, 2, 5], 2);
    expect(page(dst, 1)).toEqual(page(src, 1));
    expect(page(dst, 2)).toEqual(page(src, 2));
    expect(page(dst, 5).every((x) => x === 0)).toBe(true);
  });

  it('packs pages one after another from dstFirst', () => {
    const src = filled(32);
    const dst = new SharedArrayBuffer(6 * PAGE_SIZE);
    new PageCopier(src, dst).copyPacked(Float64Array.of(31, 4, 9), 3, 2);
    expect(page(dst, 2)).toEqual(page(src, 31));
    expect(page(dst, 3)).toEqual(page(src, 4));
    expect(page(dst, 4)).toEqual(page(src, 9));
    expect(page(dst, 0).every((x) => x === 0)).toBe(true);
    expect(page(dst, 5).every((x) => x === 0)).toBe(true);
  });

  it('copies every bit pattern exactly (NaN payloads, sign bits)', () => {
    const src = new SharedArrayBuffer(PAGE_SIZE);
    const w = new Uint32Array(src);
    const patterns = [0xffffffff, 0x7ff00001, 0xfff80000, 0x80000000, 0x7fffffff, 1, 0];
    for (let i = 0; i < w.length; i++) w[i] = patterns[i % patterns.length]!;
    const dst = new SharedArrayBuffer(PAGE_SIZE);
    new PageCopier(src, dst).copy([0]);
    expect(new Uint32Array(dst)).toEqual(w);
  });

  it('rejects a bad list before copying anything', () => {
    const src = filled(8);
    const dst = new SharedArrayBuffer(4 * PAGE_SIZE);
    const c = new PageCopier(src, dst);
    expect(() => c.copy([1, 9])).toThrow(RangeError);
    expect(() => c.copy([1, 5])).toThrow(/destination/); // page 5 fits the source, not the 4-page mirror
    expect(() => c.copy([1, -1])).toThrow(RangeError);
    expect(() => c.copy([1, 1.5])).toThrow(RangeError);
    expect(() => c.copy([1], 2)).toThrow(RangeError);
    expect(() => c.copyPacked([1, 2, 3, 4, 5], 5)).toThrow(/do not fit/);
    expect(page(dst, 1).every((x) => x === 0)).toBe(true);
  });

  it('reads a memslot of a VM and passes the USER_READ_PAGE step for each page', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x1000, pageCount: 16, logDirty: true });
    slot.mem32[5 * PAGE_WORDS] = 0xdeadbeef;
    slot.mem32[5 * PAGE_WORDS + PAGE_WORDS - 1] = 42;
    const dst = new SharedArrayBuffer(16 * PAGE_SIZE);
    const seen: number[] = [];
    installStepHook((step, a) => {
      if (step === Step.USER_READ_PAGE) seen.push(a);
    });
    try {
      PageCopier.fromSlot(slot, dst).copy([5, 6]);
    } finally {
      clearStepHook();
    }
    expect(seen).toEqual([5, 6]);
    expect(new Uint32Array(dst)[5 * PAGE_WORDS]).toBe(0xdeadbeef);
    expect(new Uint32Array(dst)[5 * PAGE_WORDS + PAGE_WORDS - 1]).toBe(42);
  });
});
