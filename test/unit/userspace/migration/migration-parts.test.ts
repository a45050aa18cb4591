/**
 * The single-threaded parts of the migration engine: the page bitmap, the page routines,
 * QEMU's dirty-limit rule, the dirty tracker of each logging mode (deferred CLEAR, resend
 * semantics), guest pacing, and the configuration's errors.
 */
import { NO_FAULTS } from '../../../../src/userspace/faults.js';
import { describe, expect, it } from 'vitest';
import {
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  PAGE_WORDS,
  encodeSlot,
} from '../../../../src/abi/constants.js';
import { SharedBlock } from '../../../../src/abi/layout.js';
import { SpteBits } from '../../../../src/kernel/memslot-layout.js';
import { VcpuControl, VcpuLayout } from '../../../../src/kernel/vcpu-layout.js';
import { VcpuThrottleLayout } from '../../../../src/userspace/migration/migration-layout.js';

const TW = VcpuThrottleLayout.words;
const TF = VcpuThrottleLayout.floats;
import { type GuestProgram, InsnKind, Instruction } from '../../../../src/guest/instruction.js';
import { ScriptedProgram } from '../../../../src/guest/scripted.js';
import { WorkloadProgram } from '../../../../src/guest/workloads.js';
import { KVM_EXIT_HLT } from '../../../../src/abi/constants.js';
import { Vcpu } from '../../../../src/kernel/vcpu.js';
import { Vm } from '../../../../src/kernel/vm.js';
import { validateDirtyRateConfig } from '../../../../src/userspace/migration/dirty-rate-config.js';
import { DestinationThread, WireSender, createWire } from '../../../../src/userspace/migration/destination.js';
import {
  DIRTYLIMIT_THROTTLE_PCT_MAX,
  DIRTYLIMIT_TOLERANCE_MIBS,
  DirtyLimitController,
  adjustThrottleUs,
} from '../../../../src/userspace/migration/dirty-limit.js';
import { DirtyTracker } from '../../../../src/userspace/migration/dirty-tracker.js';
import { validateMigrationConfig } from '../../../../src/userspace/migration/migration-config.js';
import { PageBitmap } from '../../../../src/userspace/migration/page-bitmap.js';
import { PageSampler } from '../../../../src/userspace/migration/page-sampler.js';
import { copyPageWords, hashPageWords, pageWordsEqual } from '../../../../src/userspace/page-copy.js';
import { SlotPages } from '../../../../src/userspace/migration/slot-pages.js';
import { VcpuThrottle } from '../../../../src/userspace/migration/vcpu-throttle.js';
import { SLOT_GFN, gfns, range, ringVm } from '../../../helpers/vm-fixtures.js';

/** Slot 1's first gfn (the fixtures' SLOT_GFN, 0x40000). */
const BASE = SLOT_GFN;

describe('PageBitmap', () => {
  it('sets, finds in order, clears, counts and absorbs', () => {
    const b = new PageBitmap(100);
    expect(b.nextSet(0)).toBe(-1);
    expect(b.set(3)).toBe(true);
    expect(b.set(3)).toBe(false);
    b.set(31);
    b.set(32);
    b.set(99);
    expect(b.count()).toBe(4);
    const seen: number[] = [];
    for (let g = b.nextSet(0); g >= 0; g = b.nextSet(g + 1)) seen.push(g);
    expect(seen).toEqual([3, 31, 32, 99]);
    b.clear(31);
    expect(b.has(31)).toBe(false);
    expect(b.nextSet(4)).toBe(32);
    const other = new PageBitmap(100);
    other.set(3);
    other.set(50);
    expect(b.absorb(other)).toBe(1); // 3 was already set
    expect(other.count()).toBe(0);
    expect(b.count()).toBe(4);
  });

  it('setAll marks exactly the pages, not the padding', () => {
    const b = new PageBitmap(70);
    b.setAll();
    expect(b.count()).toBe(70);
    expect(b.nextSet(69)).toBe(69);
    expect(b.nextSet(70)).toBe(-1);
  });
});

describe('page routines', () => {
  it('copy a page word for word, compare it, and hash every word', () => {
    const src = new Int32Array(3 * PAGE_WORDS).map((_, i) => (i * 2654435761) | 0);
    const dst = new Int32Array(2 * PAGE_WORDS);
    copyPageWords(src, 2 * PAGE_WORDS, dst, PAGE_WORDS);
    expect(pageWordsEqual(src, 2 * PAGE_WORDS, dst, PAGE_WORDS)).toBe(true);
    expect(pageWordsEqual(src, 0, dst, PAGE_WORDS)).toBe(false);
    expect(Array.from(dst.subarray(0, PAGE_WORDS)).every((w) => w === 0)).toBe(true);
    const h = hashPageWords(dst, PAGE_WORDS);
    expect(hashPageWords(src, 2 * PAGE_WORDS)).toBe(h);
    dst[PAGE_WORDS + PAGE_WORDS - 1]! ^= 1; // the last word counts too
    expect(hashPageWords(dst, PAGE_WORDS)).not.toBe(h);
  });

  it('samples distinct pages of every slot', () => {
    const mems = [new Int32Array(10 * PAGE_WORDS), new Int32Array(6 * PAGE_WORDS)];
    const s = new PageSampler(mems, 16, 7);
    const keys = new Set(Array.from(s.slotOf, (slot, i) => `${slot}:${s.pageOf[i]}`));
    expect(keys.size).toBe(16);
    s.snapshot();
    expect(s.changed()).toBe(0);
    mems[1]![3 * PAGE_WORDS + 5] = 1;
    expect(s.changed()).toBe(1);
  });
});

describe("QEMU's dirty-limit adjustment", () => {
  const ringFullUs = 10_000;
  it('leaves a vCPU within the tolerance alone, even one that dirtied nothing', () => {
    expect(adjustThrottleUs(500, 10, 10 + DIRTYLIMIT_TOLERANCE_MIBS, ringFullUs)).toBe(500);
    expect(adjustThrottleUs(500, 1, 0, ringFullUs)).toBe(500);
  });
  it('drops the throttle of an idle vCPU when the quota is far from 0', () => {
    expect(adjustThrottleUs(500, 100, 0, ringFullUs)).toBe(0);
  });
  it('a far-off rate moves the sleep by ring_full × pct / (100 − pct): one step lands on the quota', () => {
    // 200 MiB/s against 50: pct = 75, sleep += 3 × ring_full. At 200 MiB/s a ring fills in
    // ring_full; with 3 × ring_full of sleep after it, the rate is 200 / 4 = 50.
    expect(adjustThrottleUs(0, 50, 200, ringFullUs)).toBe(3 * ringFullUs);
    // Below the quota by more than half: the sleep shrinks the same way, never below 0.
    expect(adjustThrottleUs(3 * ringFullUs, 200, 60, ringFullUs)).toBe(ringFullUs * 3 - (ringFullUs * 70) / 30);
    expect(adjustThrottleUs(1000, 200, 60, ringFullUs)).toBe(0);
  });
  it('a near rate nudges by ring_full / 10, and the sleep is clamped to 99 × ring_full', () => {
    expect(adjustThrottleUs(1000, 100, 140, ringFullUs)).toBe(1000 + ringFullUs / 10);
    expect(adjustThrottleUs(1000, 100, 70, ringFullUs)).toBe(0); // 1000 − 1000
    expect(adjustThrottleUs(0, 1, 1000, ringFullUs)).toBe(ringFullUs * DIRTYLIMIT_THROTTLE_PCT_MAX);
  });
});

describe('SlotPages', () => {
  it('numbers pages slot after slot and rejects records naming no page', () => {
    const vm = Vm.create();
    const a = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 10, logDirty: true });
    const b = vm.createMemslot({ id: 2, baseGfn: BASE + 100, pageCount: 5, logDirty: true });
    const p = new SlotPages([a, b]);
    expect(p.total).toBe(15);
    expect(p.globalPage(b.encodedSlot, 4, 0)).toBe(14);
    expect(p.globalPage(b.encodedSlot, 5, 0)).toBe(-1);
    expect(p.globalPage(a.encodedSlot, 0, 1)).toBe(-1);
    expect(p.globalPage(encodeSlot(0, 9), 0, 0)).toBe(-1);
    expect([0, 9, 10, 14].map((g) => p.slotIndexOf(g))).toEqual([0, 0, 1, 1]);
  });
});

describe('DirtyTracker', () => {
  function writable(vm: Vm, page: number): boolean {
    return (Atomics.load(vm.memslots.findById(0, 1)!.spte, page) & SpteBits.WRITABLE) !== 0;
  }

  it('clear mode: the sync only GETs; a chunk is CLEARed (and re-protected) when its first page is about to be sent', () => {
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 256, logDirty: true });
    vm.createVcpu();
    const vcpu = new Vcpu(vm, 0);
    const prog = new ScriptedProgram();
    prog.enqueue([BASE + 1, BASE + 70, BASE + 200]);
    vcpu.run(prog);
    const pages = new SlotPages([slot]);
    const t = new DirtyTracker('clear', vm, 1, [slot], pages, 64, NO_FAULTS, null);
    expect(t.sync(false)).toBe(3);
    expect([1, 70, 200].map((p) => t.toSend.has(p))).toEqual([true, true, true]);
    expect(t.stats.clearCalls).toBe(0);
    expect(writable(vm, 70)).toBe(true); // GET alone re-arms nothing under manual protect
    t.beforeSend(0, 70);
    expect(t.stats.clearCalls).toBe(1);
    expect(writable(vm, 70)).toBe(false);
    expect(writable(vm, 200)).toBe(true);
    t.beforeSend(0, 71); // same chunk: no second CLEAR
    expect(t.stats.clearCalls).toBe(1);
    // A write after the CLEAR is recorded again and found by the next sync.
    prog.enqueue([BASE + 70]);
    vcpu.run(prog);
    t.beforeSend(0, 1);
    t.beforeSend(0, 200);
    t.toSend.clearAll();
    expect(t.sync(false)).toBe(1);
    expect(t.toSend.has(70)).toBe(true);
  });

  it('ring mode: stall collections wait in pending until the next sync', () => {
    const { vm, slot, vcpus, programs } = ringVm({ ringEntries: 256, pages: 64 });
    programs[0]!.enqueue(gfns([5, 6]));
    vcpus[0]!.run(programs[0]!);
    const t = new DirtyTracker('ring', vm, 1, [slot], new SlotPages([slot]), 64, NO_FAULTS, null);
    t.collectForStall();
    expect(t.pending.count()).toBe(2);
    expect(t.toSend.count()).toBe(0);
    expect(writable(vm, 5)).toBe(false); // harvested and reset: re-protected before any read
    expect(t.sync(false)).toBe(2);
    expect(t.stats.entriesReset).toBe(2);
    expect(t.stats.resetMismatches).toBe(0);
  });

  it('ring mode, copy-before-reset: each harvested page is sent at once, while still writable (before the reset)', () => {
    const { vm, slot, vcpus, programs } = ringVm({ ringEntries: 256, pages: 64 });
    programs[0]!.enqueue(gfns([5, 6]));
    vcpus[0]!.run(programs[0]!);
    const sentWhileWritable: boolean[] = [];
    const faults = { ...NO_FAULTS, copyBeforeReset: true };
    const t = new DirtyTracker('ring', vm, 1, [slot], new SlotPages([slot]), 64, faults, (g) => sentWhileWritable.push(writable(vm, g)));
    expect(t.sync(false)).toBe(0); // nothing left to send: the pages went out during the harvest
    expect(sentWhileWritable).toEqual([true, true]);
    expect(writable(vm, 5)).toBe(false); // the reset came afterwards
  });
});

describe('guest pacing', () => {
  it('a paced workload idles (hlt with a timer) until its write budget allows a store', () => {
    const globals = new Int32Array(new SharedArrayBuffer(4));
    const prog = new WorkloadProgram(
      { kind: 'random', seed: 1, ranges: [{ baseGfn: BASE, pageCount: 64 }], burstPages: 1, burstPercent: 0, dirtyPagesPerSecond: 1000 },
      0,
      1,
      globals,
    );
    const insn = new Instruction();
    prog.decode(insn);
    expect(insn.kind).toBe(InsnKind.IDLE);
    expect(insn.idleMs).toBeGreaterThan(0);
    expect(insn.idleMs).toBeLessThanOrEqual(5);
  });

  it('KVM_RUN halts in the kernel on IDLE and writes nothing', () => {
    const vm = Vm.create();
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE, pageCount: 4, logDirty: false });
    vm.createVcpu();
    const vcpu = new Vcpu(vm, 0);
    let n = 0;
    const program: GuestProgram = {
      decode(insn: Instruction): void {
        insn.count = 0;
        insn.kind = n++ < 2 ? InsnKind.IDLE : InsnKind.HALT;
        insn.idleMs = 0.1;
      },
    };
    expect(vcpu.run(program)).toBe(KVM_EXIT_HLT);
    expect(n).toBe(3);
    expect(slot.mem32.every((w) => w === 0)).toBe(true);
  });
});

describe('configuration errors name the parameter and the errno', () => {
  /** A ConfigError naming `fields` (param, errno). */
  const configError = (fields: { param?: string; errno?: string }) => expect.objectContaining({ name: 'ConfigError', ...fields });
  it.each([
    [{ log: 'bitmap' as const, dirtyLimitMiBs: 5 }, '--dirty-limit-mibs', 'EINVAL'],
    [{ log: 'clear' as const, ringEntries: 512 }, '--ring-entries', 'EINVAL'],
    [{ ringEntries: 1000 }, '--ring-entries', 'EINVAL'],
    [{ ringEntries: 131072 }, '--ring-entries', 'E2BIG'],
    [{ bandwidthMiBs: 0 }, '--bandwidth-mibs', 'EINVAL'],
    [{ workingSetBytes: 2 * 2 ** 30 }, '--working-set', 'EINVAL'],
    [{ log: 'clear' as const, clearChunkPages: 100 }, '--clear-chunk-pages', 'EINVAL'],
    [{ memoryBytes: 1000 }, '--memory', 'EINVAL'],
  ])('%j', (input, param, errno) => {
    expect(() => validateMigrationConfig({ seed: 1, ...input })).toThrowError(configError({ param, errno }));
  });

  it('dirty-rate refuses ring and bitmap on one VM (ENXIO) and periods outside QEMU\'s range', () => {
    expect(() => validateDirtyRateConfig({ modes: ['ring', 'bitmap'] })).toThrowError(configError({ errno: 'ENXIO' }));
    expect(() => validateDirtyRateConfig({ periodMs: 10 })).toThrowError(configError({ param: '--period-ms' }));
  });
});

describe('the wire to a destination thread', () => {
  it('delivers pages in order, pushes back when full, and ends once closed and drained', async () => {
    const wire = createWire(4);
    const sender = new WireSender(wire);
    const dest = [new SharedArrayBuffer(8 * PAGE_WORDS * 4)];
    const src = new Int32Array(8 * PAGE_WORDS).map((_, i) => i + 1);
    expect(sender.room()).toBe(4);
    for (const p of [5, 1, 7, 2]) sender.send(0, p, src);
    expect(sender.room()).toBe(0);
    const thread = new DestinationThread({ wire, destinations: dest });
    const done = thread.main();
    await sender.waitForRoom(1000);
    expect(sender.room()).toBeGreaterThan(0);
    sender.send(0, 3, src);
    await sender.drain(1000);
    sender.close();
    await done;
    expect(thread.error).toBeNull();
    const d = new Int32Array(dest[0]!);
    for (const p of [5, 1, 7, 2, 3]) expect(pageWordsEqual(src, p * PAGE_WORDS, d, p * PAGE_WORDS)).toBe(true);
    expect(d.subarray(0, PAGE_WORDS).every((w) => w === 0)).toBe(true); // page 0 never sent
  });

  it('a destination thread refuses a page outside its memory', async () => {
    const wire = createWire(2);
    const sender = new WireSender(wire);
    sender.send(0, 9, new Int32Array(10 * PAGE_WORDS));
    sender.close();
    const thread = new DestinationThread({ wire, destinations: [new SharedArrayBuffer(2 * PAGE_WORDS * 4)] });
    await thread.main();
    expect(thread.error).toMatch(/page 9 of slot 0 is outside the destination memory/);
  });
});

describe('DirtyLimitController', () => {
  /** A 4096-entry ring VM; `run(v, n, from)` makes vCPU v store to n pages from page `from`. */
  function ringVmWith(vcpuCount: number): { vm: Vm; run: (vcpu: number, n: number, from: number) => void } {
    const { vm, vcpus } = ringVm({ ringEntries: 4096, pages: 8192, vcpus: vcpuCount });
    const run = (vcpu: number, n: number, from: number): void => {
      const prog = new ScriptedProgram();
      prog.enqueue(gfns(range(from, n)));
      vcpus[vcpu]!.run(prog);
    };
    return { vm, run };
  }

  it('starts on the second sync in a row above the trigger, then measures rates from the rings each period', () => {
    const { vm, run } = ringVmWith(2);
    const c = new DirtyLimitController(vm, 2, 1, 1000);
    expect(c.considerTrigger(100, 1000, 0, 0)).toBe(false); // 10 % dirtied: below 50 %
    expect(c.considerTrigger(900, 1000, 10, 10)).toBe(false); // first high sync
    expect(c.considerTrigger(900, 1000, 20, 20)).toBe(true); // second in a row
    expect(c.stats.startedAtMs).toBe(20);
    run(0, 2560, 0); // 10 MiB in the period
    run(1, 256, 4000); // 1 MiB
    c.tick(520); // not a period yet
    expect(c.stats.adjustments).toBe(0);
    c.tick(1020);
    expect(c.stats.adjustments).toBe(1);
    expect(c.stats.ratesMiBs).toEqual([10, 1]);
    // Both within 25 MiB/s of the 1 MiB/s quota: QEMU leaves them alone.
    expect(c.stats.throttleUs).toEqual([0, 0]);
  });

  it('throttles a vCPU far above its quota by the linear step, in its shared block', () => {
    const { vm, run } = ringVmWith(1);
    const c = new DirtyLimitController(vm, 1, 1, 100);
    c.start(0, 0);
    run(0, 3000, 0); // 3000 pages in 100 ms = 117 MiB/s
    c.tick(100);
    const rate = (3000 * 4096) / 2 ** 20 / 0.1;
    const ringFullUs = ((4096 * 4096) / 2 ** 20) * 1e6 / rate;
    const pct = Math.floor(((rate - 1) * 100) / rate);
    const expected = Math.round(Math.min((ringFullUs * pct) / (100 - pct), ringFullUs * DIRTYLIMIT_THROTTLE_PCT_MAX));
    expect(c.stats.throttleUs[0]).toBe(expected);
    expect(Atomics.load(c.blocks[0]!.i32, TW.THROTTLE_US_PER_FULL)).toBe(expected);
  });
});

describe('the vCPU thread\'s throttle sleep', () => {
  it('sleeps only while the vCPU is wanted running, and counts its sleeps', () => {
    const vm = Vm.create();
    vm.createVcpu();
    const words = vm.vcpuBlock(0).i32;
    const t = new VcpuThrottle(new SharedBlock(VcpuThrottleLayout).buffer, words);
    t.sleepAfterRingFull(); // no throttle set: nothing
    expect(t.block.f64[TF.THROTTLE_SLEEPS]).toBe(0);
    // Paused, with a 30 s throttle: the sleep returns at once (a sleep that ignored CONTROL
    // would block 30 s, far past the 1 s asserted here).
    Atomics.store(t.block.i32, TW.THROTTLE_US_PER_FULL, 30_000_000);
    Atomics.store(words, VcpuLayout.words.CONTROL, VcpuControl.PAUSE);
    t.sleepAfterRingFull();
    expect(t.block.f64[TF.THROTTLE_SLEEPS]).toBe(1);
    expect(t.block.f64[TF.THROTTLE_SLEEP_NS]).toBeLessThan(1e9);
    Atomics.store(t.block.i32, TW.THROTTLE_US_PER_FULL, 2000); // 2 ms per full ring
    Atomics.store(words, VcpuLayout.words.CONTROL, VcpuControl.RUN);
    const pausedNs = t.block.f64[TF.THROTTLE_SLEEP_NS]!;
    t.sleepAfterRingFull();
    expect(t.block.f64[TF.THROTTLE_SLEEPS]).toBe(2);
    expect(t.block.f64[TF.THROTTLE_SLEEP_NS]).toBeGreaterThan(pausedNs);
  });
});
