/**
 * The stress harness's harvester variants, single-threaded: each is correct against the
 * correct kernel, and takes the path that exposes its mutant (an unaligned CLEAR, a wrapped
 * entry pair) against the buggy one.
 */
import { NO_FAULTS } from '../../../../src/userspace/faults.js';
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, PAGE_WORDS, encodeSlot } from '../../../../src/abi/constants.js';
import { SpteBits } from '../../../../src/kernel/memslot-layout.js';
import { ScriptedProgram } from '../../../../src/guest/scripted.js';
import { Mutant } from '../../../../src/userspace/known-bugs.js';
import { Vcpu } from '../../../../src/kernel/vcpu.js';
import { Vm } from '../../../../src/kernel/vm.js';
import { HostileRingCollector } from '../../../../src/stress/harvesters/hostile-ring-collector.js';
import { createHarvester } from '../../../../src/stress/harvesters/harvester-variants.js';
import { UnalignedClearCollector } from '../../../../src/stress/harvesters/unaligned-clear-collector.js';

const BASE = 0x40000;

function fixture(log: 'ring' | 'clear', mutants = 0, pages = 128) {
  const vm = Vm.create({ mutants });
  if (log === 'ring') vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 256 * 16);
  else vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1);
  const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: pages, logDirty: true });
  vm.createVcpu();
  const vcpu = new Vcpu(vm, 0);
  const prog = new ScriptedProgram();
  const store = (...offsets: number[]): void => {
    prog.enqueue(offsets.map((o) => BASE + o));
    vcpu.run(prog);
  };
  const collected: number[] = [];
  const sink = (_slot: number, offLo: number): void => {
    collected.push(offLo);
  };
  return { vm, slot, store, collected, sink };
}

describe('the unaligned-CLEAR harvester', () => {
  it('against the correct kernel: every unaligned CLEAR is refused with EINVAL and redone aligned; nothing is lost', () => {
    const f = fixture('clear');
    const c = new UnalignedClearCollector(f.vm, [f.slot], 64);
    f.store(3, 5, 70);
    expect(c.collect(f.sink)).toBe(3);
    expect(f.collected).toEqual([3, 5, 70]);
    expect(c.unaligned).toEqual({ attempts: 2, refused: 2, accepted: 0 });
    // The aligned retries cleared and protected the pages: the next stores fault and are logged.
    f.store(3, 70);
    f.collected.length = 0;
    c.collect(f.sink);
    expect(f.collected).toEqual([3, 70]);
  });

  it('against clear-unaligned: the CLEAR is accepted and clears the wrong page, so a store after GET is lost', () => {
    const f = fixture('clear', Mutant.CLEAR_UNALIGNED);
    const c = new UnalignedClearCollector(f.vm, [f.slot], 64);
    f.store(2);
    // A store to page 0 between GET and CLEAR: interpose it by wrapping the CLEAR ioctl.
    const clear = f.vm.clearDirtyLog.bind(f.vm);
    f.vm.clearDirtyLog = (slot, first, num, mask) => {
      f.store(0);
      clear(slot, first, num, mask);
    };
    c.collect(f.sink);
    expect(c.unaligned.accepted).toBe(1);
    expect(f.collected).toEqual([2]);
    // Page 0's bit (set after GET) was cleared by the misplaced mask: nothing will report it.
    f.vm.clearDirtyLog = clear;
    f.collected.length = 0;
    c.collect(f.sink);
    expect(f.collected).not.toContain(0);
    expect(f.slot.mem32[0]).toBe(1);
  });
});

describe('the hostile-wrap ring harvester', () => {
  it('against the fixed kernel: the wrapped batch is skipped, and re-arming the slot loses nothing', () => {
    const f = fixture('ring');
    const c = new HostileRingCollector(f.vm, 1, [f.slot], NO_FAULTS);
    f.store(4, 5, 6);
    expect(c.collect(f.sink, true)).toBe(3);
    expect(f.collected).toEqual([4, 5, 6]);
    expect(c.rewrites).toBe(1);
    expect(c.stats.resetMismatches).toBe(0);
    const st = f.vm.stats();
    expect(st.kernelBugs).toBe(0);
    expect(st.resetBatchesSkipped).toBeGreaterThan(0);
    // Every page is protected again (the log-flag toggle): the next stores are logged.
    for (let p = 0; p < f.slot.pageCount; p++) expect(Atomics.load(f.slot.spte, p) & SpteBits.WRITABLE).toBe(0);
    f.collected.length = 0;
    f.store(5, 6);
    c.collect(f.sink, false);
    expect(f.collected).toEqual([5, 6]);
  });

  it('against reset-wrap-check: the wrapped pair passes the range check and the rmap is indexed out of bounds', () => {
    const f = fixture('ring', Mutant.RESET_WRAP_CHECK);
    const c = new HostileRingCollector(f.vm, 1, [f.slot], NO_FAULTS);
    f.store(4, 5);
    c.collect(f.sink, true);
    expect(f.vm.stats().kernelBugs).toBe(1);
  });

  it('only rewrites in final collections, and only with two harvested entries in one ring', () => {
    const f = fixture('ring', Mutant.RESET_WRAP_CHECK);
    const c = new HostileRingCollector(f.vm, 1, [f.slot], NO_FAULTS);
    f.store(4, 5);
    c.collect(f.sink, false);
    f.store(6);
    c.collect(f.sink, true);
    expect(c.rewrites).toBe(0);
    expect(f.vm.stats().kernelBugs).toBe(0);
    expect(f.collected).toEqual([4, 5, 6]);
  });
});

describe('createHarvester', () => {
  it('refuses a variant with the wrong log mode', () => {
    const f = fixture('ring');
    expect(() => createHarvester('unaligned-clear', 'ring', f.vm, 1, [f.slot], 64, NO_FAULTS)).toThrow(/needs --log clear/);
  });

  it('the standard variant is the log mode\'s own collector', () => {
    const f = fixture('ring');
    const h = createHarvester('standard', 'ring', f.vm, 1, [f.slot], 64, NO_FAULTS);
    f.store(7);
    expect(h.collector.collect(f.sink, false)).toBe(1);
    expect(h.variantStats()).toEqual({ hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 });
    void PAGE_WORDS;
    void encodeSlot;
  });
});
