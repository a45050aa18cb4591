/**
 * Model-based tests (fast-check commands), single-threaded: random sequences of guest stores,
 * harvests, resets, GETs and CLEARs run against the emulated kernel and against a reference
 * model a few lines long, compared after every command. fast-check shrinks a failing sequence
 * to a minimal one and prints it with its seed.
 *
 * The model's rules are the protocol's: a store to a write-protected page records it (a ring
 * entry, or a bitmap bit) and makes it writable; a store to a writable page records nothing; a
 * reset consumes the harvested entries at the front of the ring and re-protects their pages;
 * legacy GET returns and clears every bit and re-protects those pages; manual GET only reads;
 * CLEAR clears the bits of its mask that were set and re-protects exactly those pages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 } from '../../../src/abi/constants.js';
import type { RingViews } from '../../../src/abi/dirty-gfn.js';
import { KvmError } from '../../../src/abi/errno.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { bitmapPages } from '../../../src/kernel/dirty-bitmap.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import { SpteBits } from '../../../src/kernel/memslot-layout.js';
import type { Memslot } from '../../../src/kernel/memslots.js';
import { Vcpu } from '../../../src/kernel/vcpu.js';
import { Vm } from '../../../src/kernel/vm.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { fuzzParams } from '../../helpers/fuzz.js';

const BASE = 0x8000;
/** Not a multiple of 64: CLEAR's end-of-slot rule is in play. */
const PAGES = 200;
const RING_ENTRIES = 256;
/** soft_limit = size − KVM_DIRTY_RING_RSVD_ENTRIES: a store command never reaches it (no exit 31). */
const SOFT_LIMIT = RING_ENTRIES - 64;
const KVM_EXIT_HLT = 5;

interface Real {
  readonly vm: Vm;
  readonly slot: Memslot;
  readonly vcpu: Vcpu;
  readonly prog: ScriptedProgram;
  readonly views: RingViews | null;
  readonly cursor: { fetchIndex: number };
}

function realVm(log: 'ring' | 'legacy' | 'manual', startIndex: number, mutants = 0): Real {
  const vm = Vm.create({ mutants });
  if (log === 'ring') vm.enableCap(KVM_CAP_DIRTY_LOG_RING, RING_ENTRIES * 16);
  if (log === 'manual') vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1);
  const slot = vm.createMemslot({ id: 0, baseGfn: BASE, pageCount: PAGES, logDirty: true });
  vm.createVcpu();
  if (log === 'ring') vm.presetRingIndex(0, startIndex);
  return { vm, slot, vcpu: new Vcpu(vm, 0), prog: new ScriptedProgram(), views: log === 'ring' ? vm.mmapRing(0) : null, cursor: { fetchIndex: startIndex } };
}

/** What the model and the kernel must agree on after every command: which pages are writable. */
function writablePages(r: Real): number[] {
  const out: number[] = [];
  for (let p = 0; p < PAGES; p++) if ((Atomics.load(r.slot.spte, p) & SpteBits.WRITABLE) !== 0) out.push(p);
  return out;
}

const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b);

function store(r: Real, writable: Set<number>, pages: readonly number[], record: (p: number) => void): void {
  r.prog.enqueue(pages.map((p) => BASE + p));
  expect(r.vcpu.run(r.prog)).toBe(KVM_EXIT_HLT);
  for (const p of pages) {
    if (writable.has(p)) continue;
    record(p);
    writable.add(p);
  }
}

// ------------------------------------------------------------------------------------------
// The ring

interface RingModel {
  readonly writable: Set<number>;
  /** Entries from reset_index to dirty_index: the page, and whether userspace harvested it. */
  readonly entries: { page: number; harvested: boolean }[];
}

const newPushes = (m: { writable: Set<number> }, pages: readonly number[]): number => new Set(pages.filter((p) => !m.writable.has(p))).size;

class RingStore implements fc.Command<RingModel, Real> {
  constructor(readonly pages: number[]) {}
  check = (m: Readonly<RingModel>): boolean => m.entries.length + newPushes(m, this.pages) < SOFT_LIMIT;
  run(m: RingModel, r: Real): void {
    store(r, m.writable, this.pages, (page) => m.entries.push({ page, harvested: false }));
    expect(r.vm.ring(0)!.used()).toBe(m.entries.length);
    expect(writablePages(r)).toEqual(sorted(m.writable));
  }
  toString = (): string => `store(${this.pages.join(',')})`;
}

class RingHarvest implements fc.Command<RingModel, Real> {
  constructor(readonly max: number) {}
  check = (): boolean => true;
  run(m: RingModel, r: Real): void {
    const got: number[] = [];
    harvestRing(r.views!, r.cursor, this.max, (_slot, offLo) => got.push(offLo));
    const expected: number[] = [];
    for (const e of m.entries) {
      if (expected.length === this.max) break;
      if (e.harvested) continue;
      e.harvested = true;
      expected.push(e.page);
    }
    expect(got).toEqual(expected);
  }
  toString = (): string => `harvest(${this.max})`;
}

class RingReset implements fc.Command<RingModel, Real> {
  check = (): boolean => true;
  run(m: RingModel, r: Real): void {
    let n = 0;
    while (n < m.entries.length && m.entries[n]!.harvested) m.writable.delete(m.entries[n++]!.page);
    m.entries.splice(0, n);
    expect(r.vm.resetDirtyRings()).toBe(n);
    expect(writablePages(r)).toEqual(sorted(m.writable));
  }
  toString = (): string => 'reset';
}

// ------------------------------------------------------------------------------------------
// The bitmap and CLEAR

interface BitmapModel {
  readonly manual: boolean;
  readonly writable: Set<number>;
  readonly bits: Set<number>;
}

function checkBitmap(m: BitmapModel, r: Real): void {
  expect(bitmapPages(r.slot.bitmapU32!)).toEqual(sorted(m.bits));
  expect(writablePages(r)).toEqual(sorted(m.writable));
}

class BitmapStore implements fc.Command<BitmapModel, Real> {
  constructor(readonly pages: number[]) {}
  check = (): boolean => true;
  run(m: BitmapModel, r: Real): void {
    store(r, m.writable, this.pages, (p) => m.bits.add(p));
    checkBitmap(m, r);
  }
  toString = (): string => `store(${this.pages.join(',')})`;
}

class BitmapGet implements fc.Command<BitmapModel, Real> {
  check = (): boolean => true;
  run(m: BitmapModel, r: Real): void {
    const out = new Uint8Array(Vm.bitmapBytes(PAGES));
    r.vm.getDirtyLog(0, out);
    expect(bitmapPages(new Uint32Array(out.buffer))).toEqual(sorted(m.bits));
    if (!m.manual) {
      for (const p of m.bits) m.writable.delete(p);
      m.bits.clear();
    }
    checkBitmap(m, r);
  }
  toString = (): string => 'get';
}

/** CLEAR's range rules (EINVAL), as the model states them. */
function clearRangeValid(first: number, num: number): boolean {
  if (first % 64 !== 0 || first > PAGES || num > PAGES - first) return false;
  return num === PAGES - first || num % 64 === 0;
}

class BitmapClear implements fc.Command<BitmapModel, Real> {
  constructor(
    readonly first: number,
    readonly num: number,
    readonly rel: number[],
  ) {}
  check = (): boolean => true;
  run(m: BitmapModel, r: Real): void {
    const maskBytes = Math.ceil(this.num / 64) * 8;
    const mask = new Uint8Array(maskBytes);
    for (const p of this.rel) if (p < maskBytes * 8) mask[p >> 3]! |= 1 << (p & 7);
    let errno: string | null = null;
    try {
      r.vm.clearDirtyLog(0, this.first, this.num, mask);
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      errno = e.errno;
    }
    if (!clearRangeValid(this.first, this.num)) {
      expect(errno).toBe('EINVAL');
    } else {
      expect(errno).toBeNull();
      for (const p of this.rel) {
        const page = this.first + p;
        if (p < maskBytes * 8 && m.bits.delete(page)) m.writable.delete(page);
      }
    }
    checkBitmap(m, r);
  }
  toString = (): string => `clear(first ${this.first}, num ${this.num}, [${this.rel.join(',')}])`;
}

// ------------------------------------------------------------------------------------------

const pagesArb = fc.array(fc.oneof(fc.nat(PAGES - 1), fc.constantFrom(0, 63, 64, PAGES - 1)), { minLength: 1, maxLength: 24 });

function ringProperty(mutants: number): fc.IPropertyWithHooks<[number, Iterable<fc.Command<RingModel, Real>>]> {
  const commands = fc.commands(
    [pagesArb.map((p) => new RingStore(p)), fc.integer({ min: 1, max: 40 }).map((n) => new RingHarvest(n)), fc.constant(new RingReset())],
    { maxCommands: 40 },
  );
  return fc.property(fc.constantFrom(0, 2 ** 32 - 100, 2 ** 31 - 7), commands, (start, cmds) => {
    fc.modelRun(() => ({ model: { writable: new Set<number>(), entries: [] }, real: realVm('ring', start, mutants) }), cmds);
  });
}

const clearArb = fc
  .tuple(fc.oneof(fc.constantFrom(0, 64, 128, 192, PAGES), fc.nat(PAGES + 64)), fc.oneof(fc.constantFrom(0, 8, 64, 72, 128, 136, PAGES), fc.nat(PAGES + 64)), fc.array(fc.nat(PAGES + 63), { maxLength: 24 }))
  .map(([first, num, rel]) => new BitmapClear(first, num, rel));

function bitmapProperty(manual: boolean, mutants: number): fc.IPropertyWithHooks<[Iterable<fc.Command<BitmapModel, Real>>]> {
  const commands = fc.commands([pagesArb.map((p) => new BitmapStore(p)), fc.constant(new BitmapGet()), clearArb], { maxCommands: 40 });
  return fc.property(commands, (cmds) => {
    fc.modelRun(() => ({ model: { manual, writable: new Set<number>(), bits: new Set<number>() }, real: realVm(manual ? 'manual' : 'legacy', 0, mutants) }), cmds);
  });
}

describe('model-based: the dirty ring (push, harvest, reset, re-protect)', () => {
  it('matches the reference model, including across the u32 index wrap', () => {
    fc.assert(ringProperty(0), fuzzParams(1700, 100));
  });
});

describe('model-based: bitmaps, legacy GET, manual GET and CLEAR', () => {
  for (const manual of [false, true]) {
    it(`${manual ? 'manual protect' : 'legacy'}: matches the reference model`, () => {
      fc.assert(bitmapProperty(manual, 0), fuzzParams(manual ? 1711 : 1710, 100));
    });
  }
});

describe('the models catch known kernel bugs', () => {
  it.each([
    ['no-tlb-flush (ring)', () => ringProperty(Mutant.NO_TLB_FLUSH)],
    ['legacy-get-no-protect', () => bitmapProperty(false, Mutant.LEGACY_GET_NO_PROTECT)],
    ['clear-unaligned', () => bitmapProperty(true, Mutant.CLEAR_UNALIGNED)],
  ] as const)('%s: a counterexample is found and shrunk', (_name, property) => {
    const r = fc.check(property() as fc.IProperty<unknown>, fuzzParams(1720, 200));
    expect(r.failed, 'the model-based test should fail with this mutant').toBe(true);
    expect(r.counterexample, 'shrunk to a reproducible case').not.toBeNull();
  });
});
