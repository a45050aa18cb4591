/**
 * 2. Guest write fast path: a vCPU running in the main thread executes store instructions to
 * pages that are already writable and cached in its software TLB (after one warm-up pass that
 * faulted each page in), through Vcpu.run — the KVM_RUN loop with its request check (every 16
 * instructions), decode, TLB lookup and the guest's five-word page write (writePage). Baselines: the
 * same five words written to the same pages of the same SharedArrayBuffer in the same order by a
 * bare loop, with plain typed-array stores, and with Atomics.store. The guest decodes its stores in
 * blocks (strided runs of pages, GuestProgram.peekStores); a reference row runs the same guest
 * decoding one instruction at a time. Unit: guest stores/s.
 * The run asserts that no timed store faulted.
 */
import { GUEST_PAGE_HEADER_WORDS, GuestPageWords } from '../../src/guest/guest-memory.js';
import { VcpuLayout } from '../../src/kernel/vcpu-layout.js';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_EXIT_HLT, PAGE_WORDS } from '../../src/abi/constants.js';
import { type GuestProgram, InsnKind, type Instruction, type StoreBlock } from '../../src/guest/instruction.js';
import { Vcpu } from '../../src/kernel/vcpu.js';
import { Vm } from '../../src/kernel/vm.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { now } from '../lib/timing.js';

const PAGES = 1024; // fits the 2048-entry direct-mapped TLB without conflicts
const BASE_GFN = 1 << 18;
const VALUE = 7;
const DATA_WORDS = PAGE_WORDS - GUEST_PAGE_HEADER_WORDS;

/** Cycles over PAGES pages, one store each, then halts after `remaining` instructions. */
class CycleDecodeProgram implements GuestProgram {
  protected i = 0;
  remaining = 0;

  decode(insn: Instruction): void {
    if (this.remaining === 0) {
      insn.kind = InsnKind.HALT;
      insn.count = 0;
      return;
    }
    this.remaining--;
    insn.kind = InsnKind.STORE;
    insn.count = 1;
    insn.gfns[0] = BASE_GFN + (this.i++ & (PAGES - 1));
    insn.value = VALUE;
    insn.exitAfter = false;
    insn.storesPerPage = 1;
  }
}

/** The same program, decoding in blocks too: what the target row runs. */
class CycleProgram extends CycleDecodeProgram {
  // Block decode (GuestProgram.peekStores): the same stores, one call per block of consecutive pages.
  peekStores(block: StoreBlock, max: number): number {
    // A strided run: the pages from i on, up to the wrap back to the first page.
    const page = this.i & (PAGES - 1);
    block.first = BASE_GFN + page;
    block.stride = 1;
    block.value = VALUE;
    return Math.min(max, this.remaining, PAGES - page);
  }

  consumeStores(n: number): void {
    this.i += n;
    this.remaining -= n;
  }
}

export const writePathSuite: Suite = {
  id: 'write-path',
  title: '2. guest write fast path',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const stores = ctx.quick ? 2_000_000 : 5_000_000;
    const repeats = ctx.quick ? 7 : 15;
    const vm = Vm.create();
    vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096 * 16);
    const slot = vm.createMemslot({ id: 1, baseGfn: BASE_GFN, pageCount: PAGES, logDirty: true });
    vm.createVcpu();
    const vcpu = new Vcpu(vm, 0);
    const blockProgram = new CycleProgram();
    const decodeProgram = new CycleDecodeProgram();
    const f = vcpu.block.f64;
    const run = (n: number, program: CycleDecodeProgram = blockProgram): number => {
      program.remaining = n;
      const t0 = now();
      const exit = vcpu.run(program);
      const t = now() - t0;
      if (exit !== KVM_EXIT_HLT) throw new Error(`write path: KVM_RUN returned exit ${exit}, expected HLT`);
      return n / (t / 1000);
    };
    run(PAGES); // fault every page in once (1024 ring pushes, below the soft limit)
    const runDecoding = (n: number): number => run(n, decodeProgram);
    const faults0 = f[VcpuLayout.floats.FAULTS]!;

    const m = slot.mem32;
    let seq = 0;
    const plain = (n: number): number => {
      const t0 = now();
      for (let k = 0; k < n; k++) {
        const b = (k & (PAGES - 1)) * PAGE_WORDS;
        seq = (seq + 1) >>> 0;
        m[b + GuestPageWords.ITERATION_LO] = VALUE;
        m[b + GuestPageWords.ITERATION_HI] = 0;
        m[b + GuestPageWords.WRITER_VCPU] = 0;
        m[b + GuestPageWords.WRITER_SEQ] = seq;
        m[b + GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS)] = (seq ^ Math.imul(VALUE, 0x9e3779b1)) >>> 0;
      }
      return n / ((now() - t0) / 1000);
    };
    const atomic = (n: number): number => {
      const t0 = now();
      for (let k = 0; k < n; k++) {
        const b = (k & (PAGES - 1)) * PAGE_WORDS;
        seq = (seq + 1) >>> 0;
        Atomics.store(m, b + GuestPageWords.ITERATION_LO, VALUE);
        Atomics.store(m, b + GuestPageWords.ITERATION_HI, 0);
        Atomics.store(m, b + GuestPageWords.WRITER_VCPU, 0);
        Atomics.store(m, b + GuestPageWords.WRITER_SEQ, seq);
        Atomics.store(m, b + GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS), (seq ^ Math.imul(VALUE, 0x9e3779b1)) >>> 0);
      }
      return n / ((now() - t0) / 1000);
    };
    // Warm up all four (JIT tiers) before recording.
    const loops = [run, plain, atomic, runDecoding];
    for (let w = 0; w < 3; w++) for (const loop of loops) loop(stores / 4);
    const samples: number[][] = loops.map(() => []);
    for (let r = 0; r < repeats; r++) {
      for (let k = 0; k < loops.length; k++) {
        const which = (k + r) % loops.length;
        samples[which]!.push(loops[which]!(stores));
      }
    }
    const [emu, pl, at, perInsn] = samples as [number[], number[], number[], number[]];
    const faults = f[VcpuLayout.floats.FAULTS]! - faults0;
    if (faults !== 0) throw new Error(`write path: ${faults} timed stores faulted; the fast path was not measured`);
    const extra = { pages: PAGES, storesPerRepeat: stores, wordsPerStore: 5 };
    // The target is scored once, against plain stores; the Atomics.store row is for reference, and
    // so is the same program decoded one instruction at a time (no block decode).
    const baselines = [
      { id: 'vs-plain', name: 'plain stores', baseline: 'plain typed-array stores', samples: pl, emu, target: { text: '≥ 50 % of raw stores', minRatio: 0.5 } },
      { id: 'vs-atomics', name: 'Atomics.store', baseline: 'Atomics.store', samples: at, emu, target: undefined },
      { id: 'per-insn-vs-plain', subject: 'guest store decoded per instruction, page writable', name: 'plain stores', baseline: 'plain typed-array stores', samples: pl, emu: perInsn, target: undefined },
    ];
    for (const b of baselines) {
      ctx.reporter.add({
        id: `write-path.${b.id}`,
        section,
        name: `${'subject' in b ? b.subject : 'guest store, page writable'} (Vcpu.run) vs ${b.name}`,
        unit: 'stores/s',
        better: 'higher',
        samples: b.emu,
        baseline: { name: b.baseline, samples: b.samples },
        target: b.target,
        extra,
      });
    }
  },
};
