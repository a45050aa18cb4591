import { describe, expect, it } from 'vitest';
import { PAGE_WORDS, encodeSlot } from '../../../src/abi/constants.js';
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { DirtyLogOracle } from '../../../src/checker/oracle.js';

function setup(pages = 8) {
  const mem32 = new Uint32Array(pages * PAGE_WORDS);
  const slot = { encodedSlot: encodeSlot(0, 1), id: 1, baseGfn: 0x100, pageCount: pages, mem32 };
  const oracle = new DirtyLogOracle([slot], 1234);
  let seq = 0;
  const write = (page: number, value: number, vcpu = 0): void => {
    const b = page * PAGE_WORDS;
    mem32[b + GuestPageWords.ITERATION_LO] = value;
    mem32[b + GuestPageWords.WRITER_VCPU] = vcpu;
    mem32[b + GuestPageWords.WRITER_SEQ] = ++seq;
  };
  return { oracle, write, slot };
}

describe('DirtyLogOracle', () => {
  it('passes when every written page was reported', () => {
    const { oracle, write, slot } = setup();
    oracle.beginIteration(1);
    write(2, 1);
    write(5, 1);
    oracle.report(slot.encodedSlot, 2, 0);
    oracle.report(slot.encodedSlot, 5, 0);
    const v = oracle.verify();
    expect([v.lostPages, v.wrongValues, v.falsePositives]).toEqual([0, 0, 0]);
  });

  it('a written page nobody reported is a lost page, with page, vCPU, iteration and seed', () => {
    const { oracle, write } = setup();
    oracle.beginIteration(3);
    write(4, 3, 2);
    const v = oracle.verify();
    expect(v.lostPages).toBe(1);
    expect(v.details[0]).toMatchObject({ slot: 1, offset: 4, gfn: 0x104, vcpu: 2, iteration: 3, value: 3, seed: 1234 });
  });

  it('catches a rewrite with an old value (same value, new writer sequence)', () => {
    const { oracle, write, slot } = setup();
    oracle.beginIteration(1);
    write(1, 1);
    oracle.report(slot.encodedSlot, 1, 0);
    oracle.verify();
    oracle.beginIteration(2);
    write(1, 1); // a stale store of 1 in iteration 2, unreported
    expect(oracle.verify().lostPages).toBe(1);
  });

  it('counts reported-but-unchanged pages as false positives, not failures', () => {
    const { oracle, slot } = setup();
    oracle.beginIteration(1);
    oracle.report(slot.encodedSlot, 6, 0);
    oracle.report(slot.encodedSlot, 6, 0);
    const v = oracle.verify();
    expect([v.lostPages, v.falsePositives, v.duplicates]).toEqual([0, 1, 1]);
  });

  it('tolerates the store pending at the previous stop carrying its old value', () => {
    const { oracle, write, slot } = setup();
    oracle.beginIteration(1);
    oracle.report(slot.encodedSlot, 3, 0); // logged, store not yet done (ring full at the stop)
    oracle.setPending([{ vcpu: 0, gfn: 0x103, value: 1 }]);
    expect(oracle.verify().lostPages).toBe(0);
    oracle.beginIteration(2);
    write(3, 1); // the retried store writes the register loaded in iteration 1
    oracle.report(slot.encodedSlot, 3, 0);
    expect(oracle.verify().wrongValues).toBe(0);
    oracle.beginIteration(3);
    write(3, 1); // the same old value again is no longer explained by a pending store
    oracle.report(slot.encodedSlot, 3, 0);
    expect(oracle.verify().wrongValues).toBe(1);
  });

  it('counts entries naming an unknown slot or an offset past the end as bad entries', () => {
    const { oracle } = setup();
    oracle.beginIteration(1);
    oracle.report(encodeSlot(0, 9), 1, 0);
    oracle.report(encodeSlot(0, 1), 8, 0);
    oracle.report(encodeSlot(0, 1), 1, 1);
    expect(oracle.verify().badEntries).toBe(3);
  });

  it('does not judge an excluded slot, and takes its pages as the new reference', () => {
    const { oracle, write, slot } = setup();
    oracle.beginIteration(1);
    oracle.excludeSlot(slot.encodedSlot);
    write(0, 1);
    expect(oracle.verify().lostPages).toBe(0);
    oracle.beginIteration(2);
    expect(oracle.verify().lostPages).toBe(0);
  });

  it('reads bitmaps bit n = page n', () => {
    const { oracle, write, slot } = setup(64);
    oracle.beginIteration(1);
    write(0, 1);
    write(33, 1);
    oracle.reportBitmap(slot.encodedSlot, new Int32Array([1, 2]));
    expect(oracle.verify().lostPages).toBe(0);
  });
});
