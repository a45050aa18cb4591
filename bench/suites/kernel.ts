/**
 * 3. The emulator's ioctls against the real kernel's, on this machine, in one run:
 * KVM_RESET_DIRTY_RINGS of 4096 entries (contiguous pages and pages 64 apart), legacy
 * KVM_GET_DIRTY_LOG and manual-protect GET + CLEAR on a 1 GiB slot with 0, 16 and 65536 dirty
 * pages (spread evenly: page i × 262144 / N).
 *
 * What each side times:
 *  - kernel (native/kvm-bench.c): CLOCK_MONOTONIC around the ioctl system call alone. The pages
 *    are dirtied beforehand by the guest's own stores (on this PVM host every guest store is
 *    emulated and logged, one ring entry / bitmap bit per page here since each page is stored
 *    to once); ring entries are harvested (flags → RESET) before the timed reset.
 *  - emulator: performance.now() around Vm.resetDirtyRings / Vm.getDirtyLog /
 *    Vm.clearDirtyLog alone, in this thread. The pages are dirtied beforehand by a Vcpu in this
 *    thread through the fault path (one push / bit per page), and harvested with harvestRing.
 * Both reset and CLEAR include their remote TLB flush (the emulator's flush has one idle vCPU
 * to ask). Kernel and emulator samples alternate, command by command.
 */
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_EXIT_HLT,
} from '../../src/abi/constants.js';
import { harvestRing } from '../../src/kernel/dirty-ring.js';
import { popcount } from '../../src/kernel/dirty-bitmap.js';
import { Vcpu } from '../../src/kernel/vcpu.js';
import { Vm } from '../../src/kernel/vm.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { ListProgram, strideGfns } from '../lib/guest.js';
import { KvmBenchProcess, buildKvmBench, kernelUnavailableReason } from '../lib/native.js';
import { now } from '../lib/timing.js';

const SLOT_PAGES = 262144; // 1 GiB
const BASE_GFN = 1 << 18; // guest physical 1 GiB, as in kvm-bench.c
const RING_ENTRIES = 8192;

class EmulatorSide {
  private readonly ringVm: Vm;
  private readonly ringVcpu: Vcpu;
  private readonly bitmapVm: Vm;
  private readonly bitmapVcpu: Vcpu;
  private readonly program = new ListProgram();
  private readonly gfns = new Float64Array(SLOT_PAGES);
  private readonly cursor = { fetchIndex: 0 };
  private readonly out = new Uint32Array(SLOT_PAGES / 32);
  private readonly slotEnc: number;
  private manual = -1;

  constructor() {
    this.ringVm = Vm.create();
    this.ringVm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, RING_ENTRIES * 16);
    this.ringVm.createMemslot({ id: 1, baseGfn: BASE_GFN, pageCount: SLOT_PAGES, logDirty: true });
    this.ringVm.createVcpu();
    this.ringVcpu = new Vcpu(this.ringVm, 0);
    this.bitmapVm = Vm.create();
    this.slotEnc = this.bitmapVm.createMemslot({ id: 1, baseGfn: BASE_GFN, pageCount: SLOT_PAGES, logDirty: true }).encodedSlot;
    this.bitmapVm.createVcpu();
    this.bitmapVcpu = new Vcpu(this.bitmapVm, 0);
  }

  private dirty(vcpu: Vcpu, count: number, stride: number): void {
    if (count === 0) return;
    const exit = vcpu.run(this.program.set(strideGfns(this.gfns, BASE_GFN, count, stride), count));
    if (exit !== KVM_EXIT_HLT) throw new Error(`kernel suite: emulator KVM_RUN returned ${exit}`);
  }

  ring(stride: number, count: number): number {
    this.dirty(this.ringVcpu, count, stride);
    const views = this.ringVm.mmapRing(0);
    const n = harvestRing(views, this.cursor, RING_ENTRIES, () => {});
    if (n !== count) throw new Error(`kernel suite: emulator ring held ${n} entries, expected ${count}`);
    const t0 = now();
    const reset = this.ringVm.resetDirtyRings();
    const us = (now() - t0) * 1000;
    if (reset !== count) throw new Error(`kernel suite: emulator reset ${reset} entries, expected ${count}`);
    return us;
  }

  private setManual(on: number): void {
    if (this.manual === on) return;
    this.bitmapVm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, on ? KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE : 0);
    this.manual = on;
    this.bitmapVm.getDirtyLog(this.slotEnc, this.out);
    if (on) this.bitmapVm.clearDirtyLog(this.slotEnc, 0, SLOT_PAGES, this.out);
  }

  private bits(): number {
    let n = 0;
    for (let i = 0; i < this.out.length; i++) n += popcount(this.out[i]!);
    return n;
  }

  legacy(count: number): number {
    this.setManual(0);
    this.dirty(this.bitmapVcpu, count, count ? Math.floor(SLOT_PAGES / count) : 1);
    const t0 = now();
    this.bitmapVm.getDirtyLog(this.slotEnc, this.out);
    const us = (now() - t0) * 1000;
    if (this.bits() !== count) throw new Error(`kernel suite: emulator GET returned ${this.bits()} bits, expected ${count}`);
    return us;
  }

  manualGetClear(count: number): [number, number] {
    this.setManual(1);
    this.dirty(this.bitmapVcpu, count, count ? Math.floor(SLOT_PAGES / count) : 1);
    let t0 = now();
    this.bitmapVm.getDirtyLog(this.slotEnc, this.out);
    const get = (now() - t0) * 1000;
    if (this.bits() !== count) throw new Error(`kernel suite: emulator manual GET returned ${this.bits()} bits, expected ${count}`);
    t0 = now();
    this.bitmapVm.clearDirtyLog(this.slotEnc, 0, SLOT_PAGES, this.out);
    return [get, (now() - t0) * 1000];
  }
}

interface Case {
  readonly id: string;
  readonly name: string;
  readonly kernel: (k: KvmBenchProcess) => Promise<number>;
  readonly emulator: (e: EmulatorSide) => number;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const [stride, label] of [
    [1, 'contiguous'],
    [64, 'stride 64'],
  ] as const) {
    out.push({
      id: `kernel.reset-4096-${stride === 1 ? 'contiguous' : 'stride64'}`,
      name: `KVM_RESET_DIRTY_RINGS, 4096 entries, ${label}`,
      kernel: async (k) => {
        const [ns, harvested, ret] = await k.command(`ring ${stride} 4096`);
        if (harvested !== 4096 || ret !== 4096) throw new Error(`kvm-bench ring: harvested ${harvested}, reset returned ${ret}`);
        return ns! / 1000;
      },
      emulator: (e) => e.ring(stride, 4096),
    });
  }
  for (const n of [0, 16, 65536]) {
    out.push({
      id: `kernel.legacy-get-${n}`,
      name: `legacy GET, 1 GiB slot, ${n} dirty`,
      kernel: async (k) => {
        const [ns, bits] = await k.command(`legacy ${n}`);
        if (bits !== n) throw new Error(`kvm-bench legacy ${n}: ${bits} bits`);
        return ns! / 1000;
      },
      emulator: (e) => e.legacy(n),
    });
  }
  for (const n of [0, 16, 65536]) {
    out.push({
      id: `kernel.manual-get-clear-${n}`,
      name: `manual GET + CLEAR, 1 GiB slot, ${n} dirty`,
      kernel: async (k) => {
        const [getNs, clearNs, bits] = await k.command(`manual ${n}`);
        if (bits !== n) throw new Error(`kvm-bench manual ${n}: ${bits} bits`);
        return (getNs! + clearNs!) / 1000;
      },
      emulator: (e) => {
        const [g, c] = e.manualGetClear(n);
        return g + c;
      },
    });
  }
  return out;
}

export const kernelSuite: Suite = {
  id: 'kernel',
  title: '3. ioctls vs the real kernel',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const why = kernelUnavailableReason();
    if (why !== null) {
      ctx.log(`  skipped: ${why}`);
      ctx.reporter.skip(section, why);
      return;
    }
    const binary = buildKvmBench(ctx.root);
    const repeats = ctx.quick ? 5 : 21;
    const k = new KvmBenchProcess(binary);
    try {
      const ready = await k.readLine(30_000, 'starting');
      if (ready !== 'ready') throw new Error(`kvm-bench: unexpected first line "${ready}"`);
      const e = new EmulatorSide();
      const list = cases();
      const kern = list.map(() => [] as number[]);
      const emu = list.map(() => [] as number[]);
      // One warm-up pass (page faults in both, JIT in the emulator), not recorded.
      for (const c of list) {
        await c.kernel(k);
        c.emulator(e);
      }
      for (let r = 0; r < repeats; r++) {
        for (let i = 0; i < list.length; i++) {
          const c = list[i]!;
          kern[i]!.push(await c.kernel(k));
          emu[i]!.push(c.emulator(e));
        }
      }
      list.forEach((c, i) => {
        ctx.reporter.add({
          id: c.id,
          section,
          name: c.name,
          unit: 'us',
          better: 'lower',
          samples: emu[i]!,
          baseline: { name: 'kernel', samples: kern[i]! },
          target: { text: 'within 2× of the kernel', minRatio: 0.5 },
        });
      });
    } finally {
      await k.close();
    }
  },
};
