/**
 * Block decode (GuestProgram.peekStores / consumeStores, run by VcpuFastPath.hitStoreBlock)
 * against the per-instruction fast path and the general KVM_RUN loop: the same script must give
 * the same exits after the same instructions, the same guest memory, ring entries and counters,
 * with kicks and TLB flushes posted while a block is decoded (a request arriving mid-block).
 * And what a block may not do: outlive a KVM_RUN, consume on peek, overrun its `max`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_EXIT_DIRTY_RING_FULL, KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_IO } from '../../../src/abi/constants.js';
import { Prng } from '../../../src/base/prng.js';
import { type GuestProgram, type Instruction, type StoreBlock } from '../../../src/guest/instruction.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { pinStepPoints } from '../../../src/kernel/step-hook.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { SLOT_GFN, gfns, ringVm } from '../../helpers/vm-fixtures.js';
import { harvestAll } from './vcpu-harvest.js';

const PAGES = 256;
const STEPS = 6000;
const F = VcpuLayout.floats;

/**
 * A ScriptedProgram that posts a request (kick or TLB flush) to the vCPU when instruction
 * `at` is decoded, or consumed from a block. Either way the vCPU must see it at the first
 * checked boundary after it. `blocks` false hides the block decode (the per-instruction fast
 * path runs).
 */
class RequestingProgram implements GuestProgram {
  private consumed = 0;
  /** Stores handed out in blocks (so that a test can tell the block path ran). */
  blockStores = 0;
  stridedStores = 0;
  private readonly posted = new Set<number>();
  peekStores?: (block: StoreBlock, max: number) => number;
  consumeStores?: (n: number) => void;

  constructor(
    private readonly inner: ScriptedProgram,
    private readonly requests: Int32Array,
    private readonly at: ReadonlyMap<number, number>,
    blocks: boolean,
  ) {
    if (blocks) {
      this.peekStores = (block, max) => {
        const n = this.inner.peekStores(block, max);
        this.blockStores += n;
        if (block.stride !== 0) this.stridedStores += n;
        return n;
      };
      // Posted once the block's prefix has executed, before the block returns: mid-block, where a
      // real request could land at any time. (At peek it would be early: a peek looks ahead of
      // what executes.)
      this.consumeStores = (n) => {
        for (let k = 0; k < n; k++) this.post(this.consumed + k);
        this.inner.consumeStores(n);
        this.consumed += n;
      };
    }
  }

  private post(index: number): void {
    const bits = this.at.get(index);
    if (bits === undefined || this.posted.has(index)) return;
    this.posted.add(index);
    Atomics.or(this.requests, VcpuLayout.words.REQUESTS, bits);
  }

  decode(insn: Instruction): void {
    this.post(this.consumed++);
    this.inner.decode(insn);
  }
}

/** Seeded mix: runs of stores of one value (blocks), loops over consecutive pages (strided blocks), repeated pages (TLB hits), new pages, loads, I/O exits, emulated stores. */
function script(seed: number): ScriptedProgram {
  const prng = new Prng(seed);
  const prog = new ScriptedProgram();
  let value = 1;
  for (let i = 0; i < STEPS; i++) {
    const r = prng.nextU32() % 100;
    if (r < 5) value++;
    const page = r < 80 ? prng.nextU32() % 24 : prng.nextU32() % PAGES;
    const gfn = SLOT_GFN + page;
    // A guest loop over consecutive pages (strided blocks), up or down.
    if (r < 8) prog.enqueue(Array.from({ length: 8 }, (_, k) => SLOT_GFN + ((page + (r < 4 ? k : -k) + PAGES) % PAGES)), { value });
    else if (r < 90) prog.enqueue([gfn], { value });
    else if (r < 94) prog.enqueueLoads([gfn]);
    else if (r < 97) prog.enqueue([gfn], { value, exitEach: true });
    else prog.enqueue([gfn], { value, storesPerPage: 2 });
  }
  return prog;
}

type Path = 'general' | 'per-instruction' | 'block';

/** Run the script to its hlt, harvesting and resetting on every exit 31. */
function runScript(seed: number, path: Path) {
  pinStepPoints(path === 'general');
  const fx = ringVm({ ringEntries: 256, pages: PAGES });
  const vcpu = fx.vcpus[0]!;
  const kick = VcpuRequest.KICK;
  const flush = VcpuRequest.TLB_FLUSH;
  const at = new Map([[5, kick], [16, kick], [17, flush], [40, kick], [41, flush], [300, flush], [1000, kick], [1001, kick], [2222, flush], [4095, kick]]);
  const prog = new RequestingProgram(script(seed), vcpu.block.i32, at, path === 'block');
  const exits: number[] = [];
  const entries: number[] = [];
  for (let guard = 0; guard < 10 * STEPS; guard++) {
    const exit = vcpu.run(prog);
    exits.push(exit, vcpu.block.f64[F.INSTRUCTIONS]!);
    if (exit === KVM_EXIT_HLT) break;
    if (exit === KVM_EXIT_DIRTY_RING_FULL) {
      entries.push(...harvestAll(fx));
      fx.vm.resetDirtyRings();
    } else if (exit !== KVM_EXIT_IO && exit !== KVM_EXIT_INTR) {
      throw new Error(`seed ${seed}: unexpected exit ${exit}`);
    }
  }
  entries.push(...harvestAll(fx));
  const f = vcpu.block.f64;
  const counters = [F.INSTRUCTIONS, F.STORES, F.FAULTS, F.PUSHES, F.RING_FULL_EXITS, F.INTR_EXITS, F.TLB_FLUSHES].map((k) => f[k]!);
  return { blockStores: prog.blockStores, stridedStores: prog.stridedStores, exits, entries, memory: Buffer.from(new Uint8Array(fx.slot.mem32.buffer).slice()), counters };
}

describe('guest store fast path: block decode', () => {
  afterEach(() => pinStepPoints(false));

  for (const seed of [1, 2, 3]) {
    it(`gives exactly what the per-instruction path and the general loop give, requests mid-block included (seed ${seed})`, () => {
      const general = runScript(seed, 'general');
      const single = runScript(seed, 'per-instruction');
      const block = runScript(seed, 'block');
      expect(general.exits.at(-2)).toBe(KVM_EXIT_HLT);
      expect(general.exits).toContain(KVM_EXIT_INTR);
      expect(general.exits).toContain(KVM_EXIT_DIRTY_RING_FULL);
      expect(general.counters[6]).toBeGreaterThan(0); // the flushes were taken
      expect(block.blockStores).toBeGreaterThan(STEPS / 2);
      expect(block.stridedStores).toBeGreaterThan(STEPS / 10);
      for (const run of [single, block]) {
        expect(run.exits).toEqual(general.exits);
        expect(run.entries).toEqual(general.entries);
        expect(run.counters).toEqual(general.counters);
        expect(run.memory.equals(general.memory), `seed ${seed}: guest memory differs`).toBe(true);
      }
    });
  }

  it('leaves nothing decoded across KVM_RUN: after a kick, a new program runs from its own first store', () => {
    const fx = ringVm({ pages: 64 });
    const vcpu = fx.vcpus[0]!;
    const pages = Array.from({ length: 40 }, (_, i) => i);
    // Fault the pages in (value 1): A's stores then hit the TLB and run in blocks.
    expect(vcpu.run(new ScriptedProgram().enqueue(gfns([...pages, 50, 51])))).toBe(KVM_EXIT_HLT);
    const before = vcpu.block.f64[F.INSTRUCTIONS]!;
    const a = new ScriptedProgram().enqueue(gfns(pages), { value: 11 });
    const requests = vcpu.block.i32;
    // Kick when instruction 20 is consumed: A stops at the next checked boundary.
    const kicking = new RequestingProgram(a, requests, new Map([[20, VcpuRequest.KICK]]), true);
    expect(vcpu.run(kicking)).toBe(KVM_EXIT_INTR);
    // Seen at the first checked boundary after instruction 20 (one every 16).
    const done = vcpu.block.f64[F.INSTRUCTIONS]! - before;
    expect(done).toBe(31);
    expect(a.remaining).toBe(40 - done);
    expect(vcpu.hasPendingInstruction).toBe(false);
    const b = new ScriptedProgram().enqueue(gfns([50, 51]), { value: 22 });
    expect(vcpu.run(b)).toBe(KVM_EXIT_HLT);
    const m = fx.slot.mem32;
    // B's stores landed, A's next one (decoded in the block the kick came in) did not.
    expect([m[50 * 1024], m[51 * 1024], m[(done - 1) * 1024], m[done * 1024]]).toEqual([22, 22, 11, 1]);
    // A picks up where it stopped.
    expect(vcpu.run(a)).toBe(KVM_EXIT_HLT);
    expect(m[39 * 1024]).toBe(11);
  });

  it('rejects a program with half of block decode, and a block larger than asked for', () => {
    const fx = ringVm({ pages: 64 });
    const vcpu = fx.vcpus[0]!;
    const half = { decode: (insn: Instruction) => new ScriptedProgram().decode(insn), peekStores: () => 0 };
    expect(() => vcpu.run(half)).toThrow(/EINVAL.*peekStores and consumeStores/);
    const greedy = new ScriptedProgram().enqueue(gfns([1, 2, 3]));
    const overrun: GuestProgram = { decode: (i) => greedy.decode(i), peekStores: (b, max) => greedy.peekStores(b, max) + max, consumeStores: (n) => greedy.consumeStores(n) };
    vcpu.run(new ScriptedProgram().enqueue(gfns([1, 2, 3]))); // fault the pages in: the block path runs on hits
    expect(() => vcpu.run(overrun)).toThrow(/peekStores returned \d+ stores for at most/);
  });

  it('catches a peek that consumes (debug checks)', () => {
    const fx = ringVm({ pages: 64 });
    const vcpu = fx.vcpus[0]!;
    vcpu.run(new ScriptedProgram().enqueue(gfns([1, 2, 3, 4])));
    const inner = new ScriptedProgram().enqueue(gfns([1, 2, 3, 4]));
    const consuming: GuestProgram = {
      decode: (i) => inner.decode(i),
      peekStores: (b, max) => {
        const n = inner.peekStores(b, max);
        inner.consumeStores(Math.min(n, 1));
        return n;
      },
      consumeStores: () => {},
    };
    expect(() => vcpu.run(consuming)).toThrow(/consumed|gave/);
  });
});
