/**
 * The userspace side of page-track notifications, single-threaded: the per-vCPU notification
 * rings (FIFO, sequence numbers, the soft-full exit, nothing lost) and the shadow-page-table
 * example kept in sync through the notifier.
 */
import { describe, expect, it } from 'vitest';
import { EMU_EXIT_TRACK_RING_FULL, KVM_EXIT_HLT, PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { GuestPageWords } from '../../../src/guest/guest-memory.js';
import { TrackRingEntryKind } from '../../../src/pagetrack/notification-ring-layout.js';
import { Mutant } from '../../../src/userspace/known-bugs.js';
import { createTrackNotifier } from '../../../src/pagetrack/kinds.js';
import {
  TRACK_RING_MIN_ENTRIES,
  TRACK_RING_RESERVED_ENTRIES,
  TrackRingReader,
  TrackRingSet,
  validateTrackRingEntries,
} from '../../../src/pagetrack/notification-ring.js';
import { ProbeNotifier } from '../../../src/pagetrack/probe-notifier.js';
import { ShadowPageTable } from '../../../src/pagetrack/shadow-page-table.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../helpers/vm-fixtures.js';

const gfn = (offset: number): number => SLOT_GFN + offset;

interface Received {
  kind: number;
  seq: number;
  ring: number;
  vcpu: number;
  addr: number;
  length: number;
  data: number[];
}

function drainAll(reader: TrackRingReader): Received[] {
  const out: Received[] = [];
  reader.drain((n) => out.push({ kind: n.kind, seq: n.seq, ring: n.ring, vcpu: n.vcpu, addr: n.addr, length: n.length, data: Array.from(n.data) }));
  return out;
}

function ringFixture(opts: { vcpus?: number; entries?: number; emulated?: boolean } = {}) {
  const fx = ringVm({ vcpus: opts.vcpus ?? 1, ringEntries: 4096, pages: 1024, vcpu: { emulateAllStores: opts.emulated ?? false } });
  const buffer = TrackRingSet.allocate(fx.vcpus.length, opts.entries ?? TRACK_RING_MIN_ENTRIES);
  const reader = new TrackRingReader(buffer);
  const id = fx.vm.pageTrack.registerNotifier(createTrackNotifier(new TrackRingSet(buffer).spec(), fx.vm));
  return { ...fx, reader, id };
}

describe('notification rings', () => {
  it('deliver each vCPU writes to tracked pages in store order, with their bytes and VM-wide sequence numbers', () => {
    const fx = ringFixture({ vcpus: 2 });
    const pt = fx.vm.pageTrack;
    pt.addGfn(gfn(1));
    pt.addGfn(gfn(2));
    fx.programs[0]!.enqueue(gfns([1, 2, 3, 1]), { value: 10 });
    fx.programs[1]!.enqueue(gfns([2, 2]), { value: 20 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    fx.vcpus[1]!.run(fx.programs[1]!);
    const got = drainAll(fx.reader);
    expect(got.map((n) => [n.ring, n.vcpu, n.addr / PAGE_SIZE - SLOT_GFN, n.length, n.data[0], n.data[GuestPageWords.WRITER_SEQ]])).toEqual([
      [0, 0, 1, 16, 10, 1],
      [0, 0, 2, 16, 10, 2],
      [0, 0, 1, 16, 10, 4],
      [1, 1, 2, 16, 20, 1],
      [1, 1, 2, 16, 20, 2],
    ]);
    expect(got.map((n) => n.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(got.every((n) => n.kind === TrackRingEntryKind.WRITE)).toBe(true);
    expect(fx.reader.lost()).toBe(0);
    expect(fx.reader.orderErrors).toBe(0);
    expect(fx.reader.writes).toBe(pt.stats().trackedWrites);
  });

  it('forward only writes to tracked pages (untracked emulated writes stay out)', () => {
    const fx = ringFixture({ emulated: true });
    fx.vm.pageTrack.addGfn(gfn(1));
    fx.programs[0]!.enqueue(gfns([0, 1, 2, 1]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(drainAll(fx.reader).map((n) => n.addr / PAGE_SIZE - SLOT_GFN)).toEqual([1, 1]);
    expect(fx.vm.pageTrack.stats().trackedWrites).toBe(2);
  });

  it('memslot removal arrives on the ioctl ring, in sequence with the writes', () => {
    const fx = ringFixture();
    fx.vm.createMemslot({ id: 2, baseGfn: 0x40, pageCount: 16, logDirty: true });
    fx.vm.pageTrack.addGfn(gfn(5));
    fx.programs[0]!.enqueue(gfns([5]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    fx.vm.deleteMemslot(2);
    const got = drainAll(fx.reader);
    expect(got.map((n) => [n.kind, n.ring, n.seq])).toEqual([
      [TrackRingEntryKind.WRITE, 0, 0],
      [TrackRingEntryKind.REMOVE_REGION, 1, 1],
    ]);
    expect(got[1]).toMatchObject({ vcpu: -1, addr: 0x40, length: 16 });
  });

  it('soft-full: the vCPU exits once the ring holds entries − reserve, and continues after a drain; nothing is lost', () => {
    const entries = TRACK_RING_MIN_ENTRIES;
    const fx = ringFixture({ entries });
    fx.vm.pageTrack.addGfn(gfn(0));
    const total = 3 * entries; // 1536 dirty entries: below the 4096-entry dirty ring's soft limit
    fx.programs[0]!.enqueue(gfns(new Array<number>(total).fill(0)));
    const vcpu = fx.vcpus[0]!;
    const seqs: number[] = [];
    let exits = 0;
    for (;;) {
      const exit = vcpu.run(fx.programs[0]!);
      if (exit === KVM_EXIT_HLT) break;
      expect(exit).toBe(EMU_EXIT_TRACK_RING_FULL);
      exits++;
      // The exit comes right after the push that reached the soft limit.
      const used = fx.reader.set.sequence - fx.reader.received;
      expect(used).toBe(entries - TRACK_RING_RESERVED_ENTRIES);
      fx.reader.drain((n) => seqs.push(n.seq));
    }
    fx.reader.drain((n) => seqs.push(n.seq));
    expect(exits).toBeGreaterThanOrEqual(5);
    expect(seqs).toEqual(range(0, total));
    expect(fx.reader.lost()).toBe(0);
    expect(fx.reader.ringStats()).toMatchObject({ pushes: total, hardFullWaits: 0 });
  });

  it('ring sizes: a power of two between the minimum and 65536 entries, else EINVAL', () => {
    expect(validateTrackRingEntries(TRACK_RING_MIN_ENTRIES)).toBe(TRACK_RING_MIN_ENTRIES);
    for (const bad of [0, 1000, TRACK_RING_MIN_ENTRIES / 2, 131072]) {
      expect(() => validateTrackRingEntries(bad)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'entries' }));
    }
  });
});

describe('the shadow page table', () => {
  function shadowFixture(opts: { vcpus?: number; mutants?: number; emulated?: boolean } = {}) {
    const fx = ringVm({ vcpus: opts.vcpus ?? 1, ringEntries: 4096, pages: 256, vm: { mutants: opts.mutants ?? 0 }, vcpu: { emulateAllStores: opts.emulated ?? false } });
    const shadow = new ShadowPageTable(ShadowPageTable.allocate(gfns([10, 11, 12, 13])), fx.vm);
    fx.vm.pageTrack.registerNotifier(createTrackNotifier(shadow.spec(), fx.vm));
    return { ...fx, shadow };
  }

  it('copies a page when it starts shadowing it, then follows every store through the notifier', () => {
    const fx = shadowFixture({ vcpus: 2 });
    // Written before shadowing: the copy must take it.
    fx.programs[0]!.enqueue(gfns([10, 11]), { value: 1 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    for (let i = 0; i < 3; i++) fx.shadow.shadow(i);
    expect(fx.vm.pageTrack.count(gfn(10))).toBe(1);
    fx.programs[0]!.enqueue(gfns([10, 11, 12, 10, 50]), { value: 2 });
    fx.programs[1]!.enqueue(gfns([12, 13, 10]), { value: 3 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    fx.vcpus[1]!.run(fx.programs[1]!);
    expect(fx.shadow.verify()).toEqual([]);
    // 13 is not shadowed, so not tracked: a plain hardware store that no notifier hears of.
    expect(fx.shadow.stats()).toMatchObject({ syncs: 6, pagesShadowed: 3, ignoredWrites: 0 });
    expect(fx.slot.mem32[10 * PAGE_WORDS + GuestPageWords.WRITER_VCPU]).toBe(1);
  });

  it('unshadowing drops the page and its tracking; stores to it are then plain again', () => {
    const fx = shadowFixture();
    fx.shadow.shadow(0);
    fx.shadow.unshadow(0);
    expect(fx.vm.pageTrack.count(gfn(10))).toBe(0);
    fx.programs[0]!.enqueue(gfns([10, 10]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.shadow.stats().syncs).toBe(0);
    expect(fx.shadow.verify()).toEqual([]);
    expect(() => fx.shadow.unshadow(0)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'index' }));
  });

  it('stays in sync on the emulated path too (bursts and ordinary emulated stores)', () => {
    const fx = shadowFixture({ emulated: true });
    fx.shadow.shadow(1);
    fx.programs[0]!.enqueue(gfns([11, 12, 11]), { storesPerPage: 2 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.shadow.verify()).toEqual([]);
  });

  it('a memslot removal drops its shadowed pages', () => {
    const fx = ringVm({ pages: 64 });
    fx.vm.createMemslot({ id: 2, baseGfn: 0x40, pageCount: 16, logDirty: true });
    const shadow = new ShadowPageTable(ShadowPageTable.allocate([0x41, SLOT_GFN + 1]), fx.vm);
    fx.vm.pageTrack.registerNotifier(createTrackNotifier(shadow.spec(), fx.vm));
    shadow.shadow(0);
    shadow.shadow(1);
    fx.vm.deleteMemslot(2);
    expect(shadow.isShadowed(0)).toBe(false);
    expect(shadow.isShadowed(1)).toBe(true);
    expect(shadow.stats()).toMatchObject({ pagesDropped: 1, removeRegions: 1 });
  });

  it.each([
    ['track-fault-fixes-tracked', Mutant.TRACK_FAULT_FIXES_TRACKED],
    ['track-notify-before-write', Mutant.TRACK_NOTIFY_BEFORE_WRITE],
  ])('catches the %s mutant', (_name, mutant) => {
    const fx = shadowFixture({ mutants: mutant });
    fx.shadow.shadow(0);
    fx.programs[0]!.enqueue(gfns([10, 10]), { value: 5 });
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.shadow.verify()).toEqual([{ gfn: gfn(10), offset: expect.any(Number) }]);
  });

  it('catches the track-no-tlb-flush mutant when a vCPU held the page in its TLB', () => {
    const fx = shadowFixture({ mutants: Mutant.TRACK_NO_TLB_FLUSH });
    fx.programs[0]!.enqueue(gfns([10]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    fx.shadow.shadow(0);
    fx.programs[0]!.enqueue(gfns([10]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.shadow.verify()).toHaveLength(1);
  });
});

describe('the probe notifier', () => {
  it('counts one delivery per tracked write, and none is left in flight once the vCPU returns (callbacks held 200 µs each)', () => {
    const fx = ringVm();
    const probe = new ProbeNotifier(ProbeNotifier.allocate({ holdUs: 200 }));
    fx.vm.pageTrack.registerNotifier(createTrackNotifier(probe.spec(), fx.vm));
    fx.vm.pageTrack.addGfn(gfn(1));
    fx.programs[0]!.enqueue(gfns([1, 1, 2]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(probe.delivered).toBe(2);
    expect(probe.inFlight).toBe(0);
  });
});
