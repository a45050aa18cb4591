/**
 * The harvester SDK in one thread: defineHarvester's checks, the ring accessors against entries
 * the kernel really pushed (orderings aside, what they read and write), step points at every
 * access, the reset-count check, reports (offsets past 2^32, garbage), and ioctls that give the
 * harvester KVM's errnos and are counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 } from '../../../src/abi/constants.js';
import { KvmError } from '../../../src/abi/errno.js';
import { ConfigError } from '../../../src/base/config-error.js';
import { type HarvesterDefinition, type HarvesterKvm, KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET, defineHarvester, isHarvesterDefinition } from '../../../src/harvester/contract.js';
import { HarvesterAccess } from '../../../src/harvester/ring-mapping.js';
import { HarvesterRunError, UserHarvesterCollector } from '../../../src/harvester/user-collector.js';
import { Step, clearStepHook, installStepHook } from '../../../src/kernel/step-hook.js';
import { Vm } from '../../../src/kernel/vm.js';
import { gfns, ringVm } from '../../helpers/vm-fixtures.js';

afterEach(() => clearStepHook());

/** A harvester whose collect runs `body` with the VM view; create() keeps the view. */
function probe(log: 'ring' | 'bitmap' | 'clear', body: (kvm: HarvesterKvm) => void): HarvesterDefinition {
  return defineHarvester({ name: 'probe', log, create: (kvm) => ({ collect: () => body(kvm) }) });
}

/** A ring VM whose vCPU 0 stored to `offsets` (one entry each). */
function pushed(offsets: number[]): ReturnType<typeof ringVm> {
  const fx = ringVm({ ringEntries: 256, pages: 1024 });
  fx.programs[0]!.enqueue(gfns(offsets));
  fx.vcpus[0]!.run(fx.programs[0]!);
  return fx;
}

describe('defineHarvester', () => {
  it('marks a valid definition, refuses a bad field naming it', () => {
    const d = defineHarvester({ name: 'x', log: 'clear', create: () => ({ collect() {} }) });
    expect(isHarvesterDefinition(d)).toBe(true);
    expect(isHarvesterDefinition({ name: 'x', log: 'ring', create() {} })).toBe(false);
    expect(() => defineHarvester({ name: '', log: 'ring', create: () => ({ collect() {} }) })).toThrow('defineHarvester.name : EINVAL');
    expect(() => defineHarvester({ name: 'x', log: 'pml' as never, create: () => ({ collect() {} }) })).toThrow(ConfigError);
    expect(() => defineHarvester({ name: 'x', log: 'pml' as never, create: () => ({ collect() {} }) })).toThrow('defineHarvester.log pml: EINVAL, must be one of ring, bitmap, clear');
    expect(() => defineHarvester({ name: 'x', log: 'ring', create: 3 as never })).toThrow('defineHarvester.create number: EINVAL');
  });
});

describe('ring accessors', () => {
  it('read what the kernel pushed, mark RESET, and the reset consumes exactly those', () => {
    const fx = pushed([5, 6, 700]);
    const seen: [number, number, number][] = [];
    let reset = -1;
    const c = new UserHarvesterCollector(
      probe('ring', (kvm) => {
        const ring = kvm.ring(0);
        expect(ring.entryCount).toBe(256);
        expect(ring.buffer.byteLength).toBe(256 * 16);
        for (let i = ring.startIndex; ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY; i++) {
          seen.push([ring.readSlot(i), ring.readOffset(i), ring.loadFlagsPlain(i)]);
          ring.storeResetRelease(i);
          expect(ring.loadFlagsAcquire(i)).toBe(KVM_DIRTY_GFN_F_RESET);
        }
        reset = kvm.resetDirtyRings();
      }),
      fx.vm,
      1,
      [fx.slot],
    );
    c.collect(() => {}, false);
    expect(seen).toEqual([[fx.slot.encodedSlot, 5, 1], [fx.slot.encodedSlot, 6, 1], [fx.slot.encodedSlot, 700, 1]]);
    expect(reset).toBe(3);
    expect(c.stats.resetMismatches).toBe(0);
    expect(c.report()).toMatchObject({ name: 'probe', resetCalls: 1, ioctlErrors: 0 });
  });

  it('every access is a step point with the entry index and the kind of access', () => {
    const fx = pushed([9]);
    const steps: [number, number, number][] = [];
    installStepHook((step, a, b) => {
      if (step === Step.HARVESTER_ACCESS) steps.push([step, a, b]);
    });
    const c = new UserHarvesterCollector(
      probe('ring', (kvm) => {
        const r = kvm.ring(0);
        r.loadFlagsAcquire(0);
        r.readSlot(0);
        r.readOffset(0);
        r.storeResetRelease(0);
      }),
      fx.vm,
      1,
      [fx.slot],
    );
    c.collect(() => {}, false);
    const A = HarvesterAccess;
    expect(steps.map(([, a, b]) => [a, b])).toEqual([[0, A.LOAD_FLAGS], [0, A.READ_SLOT], [0, A.READ_OFFSET], [0, A.STORE_RESET]]);
  });

  it('a reset that consumes other than what was marked RESET is a reset mismatch', () => {
    const fx = pushed([1, 2]);
    const c = new UserHarvesterCollector(
      probe('ring', (kvm) => {
        const r = kvm.ring(0);
        r.storeResetRelease(0);
        r.storeFlagsPlain(1, KVM_DIRTY_GFN_F_RESET); // not through the accessor that counts
        kvm.resetDirtyRings();
      }),
      fx.vm,
      1,
      [fx.slot],
    );
    c.collect(() => {}, false);
    expect(c.stats.resetMismatches).toBe(1);
  });
});

describe('reports and ioctls', () => {
  it('reports reach the sink as (slot, low, high) words; garbage names no page', () => {
    const fx = ringVm();
    const got: number[][] = [];
    const c = new UserHarvesterCollector(
      probe('ring', (kvm) => {
        kvm.report(1, 7);
        kvm.report(1, 2 ** 32 + 3);
        kvm.report(1, 1.5);
        kvm.report(1, -1);
      }),
      fx.vm,
      1,
      [fx.slot],
    );
    expect(c.collect((s, lo, hi) => got.push([s, lo, hi]), false)).toBe(4);
    expect(got).toEqual([[1, 7, 0], [1, 3, 1], [1, 0xffffffff, 0xffffffff], [1, 0xffffffff, 0xffffffff]]);
  });

  it('bad ioctl arguments get KVM errnos, counted; the state is unchanged', () => {
    const fx = ringVm();
    const errnos: string[] = [];
    const tryIt = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(KvmError);
        errnos.push((e as KvmError).errno);
      }
    };
    const c = new UserHarvesterCollector(
      probe('ring', (kvm) => {
        tryIt(() => kvm.getDirtyLog(fx.slot.encodedSlot, new Uint32Array(32)));
        tryIt(() => kvm.ring(5));
        tryIt(() => kvm.kick(-1));
      }),
      fx.vm,
      1,
      [fx.slot],
    );
    c.collect(() => {}, false);
    expect(errnos).toEqual(['ENXIO', 'EINVAL', 'EINVAL']);
    expect(c.report()).toMatchObject({ ioctlErrors: 3 });
    expect(c.report().firstIoctlError).toMatch(/^ENXIO/);
  });

  it('an unaligned CLEAR is EINVAL in clear mode, an aligned one clears', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1);
    const slot = vm.createMemslot({ id: 1, baseGfn: 0x1000, pageCount: 128, logDirty: true });
    const c = new UserHarvesterCollector(
      probe('clear', (kvm) => {
        const bits = new Uint32Array(4);
        kvm.getDirtyLog(kvm.memslots[0]!.slot, bits);
        expect(() => kvm.clearDirtyLog(kvm.memslots[0]!.slot, 3, 64, bits)).toThrow('EINVAL');
        kvm.clearDirtyLog(kvm.memslots[0]!.slot, 0, 128, bits);
      }),
      vm,
      0,
      [slot],
    );
    c.collect(() => {}, false);
    expect(c.report()).toMatchObject({ ioctlErrors: 1 });
    expect(c.stats.clearCalls).toBe(2);
  });

  it('a throwing create or collect is a HarvesterRunError with the stack and the collection', () => {
    const fx = ringVm();
    const boom = defineHarvester({ name: 'boom', log: 'ring', create: () => ({ collect: () => { throw new TypeError('bad state'); } }) });
    const c = new UserHarvesterCollector(boom, fx.vm, 1, [fx.slot]);
    expect(() => c.collect(() => {}, true)).toThrow(HarvesterRunError);
    expect(() => c.collect(() => {}, true)).toThrow(/harvester 'boom' threw in collection 1 \(final\): TypeError: bad state\n\s+at /);
    const noCollect = defineHarvester({ name: 'nc', log: 'ring', create: () => ({}) as never });
    expect(() => new UserHarvesterCollector(noCollect, fx.vm, 1, [fx.slot]).collect(() => {}, false)).toThrow("harvester 'nc': create() must return an object with a collect(collection) method");
  });
});
