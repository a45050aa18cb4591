/**
 * Fuzzing every public entry point of the emulated kernel with arguments of any type and value:
 * each call either succeeds or throws a KvmError whose errno is one the kernel gives for that
 * ioctl, naming a parameter — and an error leaves every byte of the VM's shared state as it was
 * (the one exception is the kernel's own: legacy GET with a NULL buffer consumes the bits).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 } from '../../../src/abi/constants.js';
import { type ErrnoName, KvmError } from '../../../src/abi/errno.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { ringViews } from '../../../src/abi/dirty-gfn.js';
import { DmaDevice } from '../../../src/kernel/device.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { anyValue, argLike, fuzzParams } from '../../helpers/fuzz.js';

const BASE = 0x1000;
const PAGES = 100;
const DIRTY = [3, 9, 20, 31, 40];
const KINDS = ['legacy', 'manual', 'ring'] as const;
type Kind = (typeof KINDS)[number];

interface Fixture {
  readonly vm: Vm;
  readonly device: DmaDevice;
}

/** A VM with slot 0 (logged, pages DIRTY written), slot 1 (not logged) and one vCPU. */
function fixture(kind: Kind): Fixture {
  const vm = Vm.create();
  if (kind === 'manual') vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1);
  if (kind === 'ring') vm.enableCap(KVM_CAP_DIRTY_LOG_RING, 4096);
  vm.createMemslot({ id: 0, baseGfn: BASE, pageCount: PAGES, logDirty: true });
  vm.createMemslot({ id: 1, baseGfn: BASE + PAGES, pageCount: 8 });
  vm.createVcpu();
  const prog = new ScriptedProgram();
  prog.enqueue(DIRTY.map((p) => BASE + p));
  new Vcpu(vm, 0).run(prog);
  return { vm, device: new DmaDevice(vm, 0) };
}

/** Every byte of the VM's shared state, and of its slots' buffers. */
function snapshot(vm: Vm): Buffer {
  const b = vm.buffers();
  const parts: ArrayBufferLike[] = [b.vm, b.memslots, b.pageTrack, ...b.vcpus];
  for (const s of b.slots) if (s) parts.push(s.memory, s.spte, s.gfnTrack, ...(s.bitmap ? [s.bitmap] : []));
  const rings = b.rings.flatMap((r) => (r ? [new Uint8Array(r.buffer, r.byteOffset, r.byteLength)] : []));
  return Buffer.concat([...parts.map((p) => new Uint8Array(p)), ...rings]);
}

/** A user bitmap: null, or bytes / words of lengths around the 16 bytes a 100-page slot needs. */
const bitmapArg = fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 40 }).map((n) => new Uint8Array(n)), fc.integer({ min: 0, max: 10 }).map((n) => new Uint32Array(n)), anyValue);
const slotArg = argLike(0, 1, 2, 1 << 16, (1 << 16) | 1, 32764, 65535);

interface EntryPoint {
  readonly name: string;
  readonly args: fc.Arbitrary<unknown[]>;
  readonly errnos: readonly ErrnoName[];
  readonly call: (fx: Fixture, args: unknown[]) => unknown;
  /** The documented exception to "an error changes nothing". */
  readonly mayChangeOnError?: (args: unknown[]) => boolean;
}

const BITMAP_ERRNOS: ErrnoName[] = ['ENXIO', 'EINVAL', 'ENOENT', 'EFAULT'];
const MEMSLOT_ERRNOS: ErrnoName[] = ['EINVAL', 'EEXIST', 'ENOSPC', 'EFAULT', 'ENOMEM'];
const ENTRY_POINTS: EntryPoint[] = [
  {
    name: 'getDirtyLog',
    args: fc.tuple(slotArg, bitmapArg),
    errnos: BITMAP_ERRNOS,
    call: ({ vm }, [slot, out]) => vm.getDirtyLog(slot as number, out as Uint8Array),
    mayChangeOnError: ([, out]) => out === null,
  },
  {
    name: 'clearDirtyLog',
    args: fc.tuple(slotArg, argLike(0, 64, 128), argLike(0, 36, 64, 100), bitmapArg),
    errnos: BITMAP_ERRNOS,
    call: ({ vm }, [slot, first, num, mask]) => vm.clearDirtyLog(slot as number, first as number, num as number, mask as Uint8Array),
  },
  {
    name: 'enableCap',
    args: fc.tuple(argLike(118, 168, 192, 223, 225), argLike(0, 1, 2, 3, 4096, 65536, 1 << 20, 1 << 21), argLike(0, 1)),
    errnos: ['EINVAL', 'E2BIG'],
    call: ({ vm }, [cap, args0, flags]) => vm.enableCap(cap as number, args0 as number, flags as number),
  },
  { name: 'checkExtension', args: fc.tuple(argLike(118, 168, 192, 223, 225)), errnos: [], call: ({ vm }, [cap]) => expect(typeof vm.checkExtension(cap as number)).toBe('number') },
  { name: 'presetRingIndex', args: fc.tuple(argLike(0, 1), argLike(0, 4096, 2 ** 32 - 1)), errnos: ['EINVAL', 'EBUSY'], call: ({ vm }, [i, s]) => vm.presetRingIndex(i as number, s as number) },
  {
    name: 'mmapRing',
    args: fc.tuple(argLike(0, 1), fc.oneof(anyValue, fc.record({ shared: argLike(), exec: argLike() }, { requiredKeys: [] }))),
    errnos: ['EPERM', 'EINVAL', 'EFAULT'],
    call: ({ vm }, [i, prot]) => vm.mmapRing(i as number, prot as object),
  },
  {
    name: 'setUserMemoryRegion',
    args: fc.tuple(
      fc.oneof(
        anyValue,
        fc.record(
          {
            slot: slotArg,
            flags: argLike(0, 1, 2, 3),
            guestPhysAddr: argLike(0, BASE * 4096, (BASE + 50) * 4096, 2 ** 40, 4095),
            memorySize: argLike(0, 4096, 64 * 4096, PAGES * 4096, (2 ** 31 - 1) * 4096, 2 ** 31 * 4096),
            memory: fc.oneof(fc.constant(undefined), fc.constant(new SharedArrayBuffer(4096)), anyValue),
          },
          { requiredKeys: [] },
        ),
      ),
    ),
    errnos: MEMSLOT_ERRNOS,
    call: ({ vm }, [region]) => vm.setUserMemoryRegion(region as never),
  },
  {
    name: 'createMemslot',
    args: fc.tuple(
      fc.oneof(anyValue, fc.record({ id: argLike(0, 2, 70000), asId: argLike(0, 1), baseGfn: argLike(0, BASE, 2 ** 40), pageCount: argLike(1, 64, 2 ** 31 - 1), logDirty: argLike() }, { requiredKeys: [] })),
    ),
    errnos: MEMSLOT_ERRNOS,
    call: ({ vm }, [opts]) => vm.createMemslot(opts as never),
  },
  { name: 'setLogDirty', args: fc.tuple(argLike(0, 1, 2), argLike(), argLike(0, 1)), errnos: ['EINVAL'], call: ({ vm }, [id, on, as]) => vm.setLogDirty(id as number, on as boolean, as as number) },
  { name: 'deleteMemslot', args: fc.tuple(argLike(0, 1, 2), argLike(0, 1)), errnos: ['EINVAL'], call: ({ vm }, [id, as]) => vm.deleteMemslot(id as number, as as number) },
  {
    name: 'resetDirtyRings',
    args: fc.tuple(fc.oneof(fc.constant(undefined), fc.func(fc.boolean()), anyValue)),
    errnos: ['EINVAL'],
    call: ({ vm }, [signal]) => vm.resetDirtyRings(signal as () => boolean),
  },
  { name: 'kickVcpu', args: fc.tuple(argLike(0, 1)), errnos: ['EINVAL'], call: ({ vm }, [i]) => vm.kickVcpu(i as number) },
  { name: 'requestAllAndWait', args: fc.tuple(argLike(1, 2, 4, 8, 16)), errnos: ['EINVAL'], call: ({ vm }, [bits]) => vm.requestAllAndWait(bits as number) },
  {
    name: 'markPageDirtyNoVcpu',
    args: fc.tuple(fc.boolean(), anyValue, argLike(0, 3, PAGES - 1, PAGES)),
    errnos: ['EINVAL'],
    call: ({ vm }, [real, other, page]) => vm.markPageDirtyNoVcpu((real ? vm.memslots.findById(0, 0) : other) as never, page as number),
  },
  { name: 'DmaDevice.write', args: fc.tuple(argLike(BASE, BASE + 3, BASE + PAGES, 0), argLike(0, 7)), errnos: ['EFAULT', 'EINVAL'], call: ({ device }, [gfn, v]) => device.write(gfn as number, v as number) },
  {
    name: 'new Vcpu',
    args: fc.tuple(argLike(0, 1), fc.oneof(fc.constant(undefined), anyValue, fc.record({ asId: argLike(0, 1), emulateAllStores: argLike(), preemptAfterMs: argLike(0, 5) }, { requiredKeys: [] }))),
    errnos: ['EINVAL', 'EFAULT'],
    call: ({ vm }, [i, o]) => new Vcpu(vm, i as number, o as never),
  },
  {
    name: 'Vcpu.run',
    args: fc.tuple(fc.oneof(anyValue, fc.constant('a program'))),
    errnos: ['EINVAL'],
    call: ({ vm }, [p]) => new Vcpu(vm, 0).run((p === 'a program' ? new ScriptedProgram() : p) as never),
  },
  {
    name: 'harvestRing',
    args: fc.tuple(
      fc.oneof(anyValue, fc.record({ fetchIndex: argLike(0, 1, 2 ** 32 - 1) })),
      argLike(0, 1, 4, 1e9),
      fc.oneof(fc.constant('a sink'), anyValue),
      argLike(2, 3),
    ),
    errnos: ['EINVAL'],
    call: ({ vm }, [cursor, max, sink, flags]) => {
      const views = vm.ringBytes > 0 ? vm.mmapRing(0) : ringViews(new SharedArrayBuffer(4096));
      harvestRing(views, cursor as never, max as number, (sink === 'a sink' ? () => undefined : sink) as never, flags as number);
    },
  },
  { name: 'pageTrack.addGfn', args: fc.tuple(argLike(BASE, BASE + 3, 0)), errnos: ['EINVAL'], call: ({ vm }, [gfn]) => vm.pageTrack.addGfn(gfn as number) },
  { name: 'pageTrack.removeGfn', args: fc.tuple(argLike(BASE, BASE + 3, 0)), errnos: ['EINVAL'], call: ({ vm }, [gfn]) => vm.pageTrack.removeGfn(gfn as number) },
  {
    name: 'pageTrack.registerNotifier',
    args: fc.tuple(fc.oneof(anyValue, fc.record({ trackWrite: fc.oneof(fc.func(fc.constant(undefined)), anyValue), trackRemoveRegion: fc.oneof(fc.func(fc.constant(undefined)), anyValue) }))),
    errnos: ['EINVAL', 'ENOMEM'],
    call: ({ vm }, [n]) => vm.pageTrack.registerNotifier(n as never),
  },
  { name: 'pageTrack.count', args: fc.tuple(argLike(BASE, BASE + 3, 0)), errnos: ['EINVAL'], call: ({ vm }, [gfn]) => vm.pageTrack.count(gfn as number) },
  { name: 'pageTrack.vcpuBlock', args: fc.tuple(argLike(0, 1, 255, 256)), errnos: ['EINVAL'], call: ({ vm }, [i]) => vm.pageTrack.vcpuBlock(i as number) },
  {
    name: 'pageTrack.activateNotifier / cancelReservation',
    args: fc.tuple(fc.boolean(), argLike(0, 1), argLike(0, 1, 2)),
    errnos: ['EINVAL'],
    call: ({ vm }, [activate, id, gen]) => (activate ? vm.pageTrack.activateNotifier(id as number, gen as number) : vm.pageTrack.cancelReservation(id as number, gen as number)),
  },
  { name: 'pageTrack.unregisterNotifier', args: fc.tuple(argLike(0, 1)), errnos: ['EINVAL'], call: ({ vm }, [id]) => vm.pageTrack.unregisterNotifier(id as number) },
];

function show(args: unknown[]): string {
  return fc.stringify(args);
}

describe('every public entry point, fuzzed', () => {
  ENTRY_POINTS.forEach((ep, n) => {
    it(`${ep.name}: succeeds, or fails with its errno and changes nothing`, () => {
      fc.assert(
        fc.property(fc.constantFrom(...KINDS), ep.args, (kind, args) => {
          const fx = fixture(kind);
          const before = snapshot(fx.vm);
          try {
            ep.call(fx, args);
          } catch (e) {
            if (!(e instanceof KvmError)) throw new Error(`${ep.name}(${show(args)}) on a ${kind} VM threw ${String(e)}`);
            expect(ep.errnos, `${ep.name}(${show(args)}): ${e.message}`).toContain(e.errno);
            expect(e.param, e.message).toBeTruthy();
            if (!ep.mayChangeOnError?.(args)) expect(snapshot(fx.vm).equals(before), `${ep.name}(${show(args)}) failed with ${e.message} but changed the VM`).toBe(true);
          }
        }),
        fuzzParams(1600 + n, 200),
      );
    });
  });

  it('Vm.attach takes only the buffers of a VM', () => {
    const real = fixture('ring').vm.buffers();
    const field = <K extends keyof typeof real>(k: K): fc.Arbitrary<unknown> => fc.oneof(fc.constant(real[k]), anyValue);
    const buffers = fc.oneof(anyValue, fc.record({ vm: field('vm'), memslots: field('memslots'), vcpus: field('vcpus'), rings: field('rings'), slots: field('slots'), pageTrack: field('pageTrack') }));
    fc.assert(
      fc.property(buffers, (b) => {
        try {
          expect(Vm.attach(b as never).createdVcpus).toBe(1);
        } catch (e) {
          if (!(e instanceof KvmError)) throw new Error(`Vm.attach(${show([b])}) threw ${String(e)}`);
          expect(['EINVAL', 'EFAULT']).toContain(e.errno);
        }
      }),
      fuzzParams(1651, 400),
    );
  });

  it('Vm.create and Vm.bitmapBytes take only what they document', () => {
    fc.assert(
      fc.property(fc.oneof(anyValue, fc.record({ mutants: argLike(0, 1, 1 << 5, 1 << 30), smm: argLike(), offerRingWithBitmap: argLike() }, { requiredKeys: [] })), argLike(0, 1, 100), (options, pages) => {
        for (const f of [() => Vm.create(options as never), () => Vm.bitmapBytes(pages as number)]) {
          try {
            f();
          } catch (e) {
            if (!(e instanceof KvmError)) throw new Error(`threw ${String(e)} for ${show([options, pages])}`);
            expect(['EINVAL', 'EFAULT']).toContain(e.errno);
          }
        }
      }),
      fuzzParams(1650),
    );
  });
});
