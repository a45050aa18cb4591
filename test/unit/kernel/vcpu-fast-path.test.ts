/**
 * The guest store fast path (Vcpu.storeBurst → VcpuFastPath.hitStores, per instruction) against the general KVM_RUN
 * loop, which every run takes while step points are active: the same program must give the
 * same exits at the same instructions, the same guest memory byte for byte, the same ring
 * entries and the same counters. Deterministic: one thread, a seeded program.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_EXIT_DIRTY_RING_FULL, KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_IO } from '../../../src/abi/constants.js';
import { Prng } from '../../../src/base/prng.js';
import { type GuestProgram, type Instruction } from '../../../src/guest/instruction.js';
import { ScriptedProgram } from '../../../src/guest/scripted.js';
import { pinStepPoints } from '../../../src/kernel/step-hook.js';
import { VcpuLayout, VcpuRequest } from '../../../src/kernel/vcpu-layout.js';
import { SLOT_GFN, ringVm } from '../../helpers/vm-fixtures.js';
import { harvestAll } from './vcpu-harvest.js';

const PAGES = 256;
const STEPS = 6000;

/** A ScriptedProgram that posts a kick to the vCPU when it decodes instruction `kickAt[i]`. */
class KickingProgram implements GuestProgram {
  private decoded = 0;
  constructor(
    private readonly inner: ScriptedProgram,
    private readonly requests: Int32Array,
    private readonly kickAt: ReadonlySet<number>,
  ) {}

  decode(insn: Instruction): void {
    if (this.kickAt.has(this.decoded++)) Atomics.or(this.requests, VcpuLayout.words.REQUESTS, VcpuRequest.KICK);
    this.inner.decode(insn);
  }
}

/** Seeded mix: mostly repeated stores to a few pages (TLB hits), some new pages, loads, I/O exits, emulated stores. */
function script(seed: number): ScriptedProgram {
  const prng = new Prng(seed);
  const prog = new ScriptedProgram();
  for (let i = 0; i < STEPS; i++) {
    const r = prng.nextU32() % 100;
    const page = r < 80 ? prng.nextU32() % 24 : prng.nextU32() % PAGES;
    const gfn = SLOT_GFN + page;
    if (r < 90) prog.enqueue([gfn], { value: i });
    else if (r < 94) prog.enqueueLoads([gfn]);
    else if (r < 97) prog.enqueue([gfn], { value: i, exitEach: true });
    else prog.enqueue([gfn], { value: i, storesPerPage: 2 });
  }
  return prog;
}

interface Trace {
  /** Pairs: exit reason, instructions completed so far. */
  exits: number[];
  entries: number[];
  memory: Uint8Array;
  counters: number[];
}

/** Run the script to its hlt, harvesting and resetting on every exit 31. */
function runScript(seed: number, generalPath: boolean): Trace {
  pinStepPoints(generalPath);
  const fx = ringVm({ ringEntries: 256, pages: PAGES });
  const vcpu = fx.vcpus[0]!;
  const kicks = new Set([5, 16, 17, 40, 1000, 1001, 4095]);
  const prog = new KickingProgram(script(seed), vcpu.block.i32, kicks);
  const exits: number[] = [];
  const entries: number[] = [];
  for (let guard = 0; guard < 10 * STEPS; guard++) {
    const exit = vcpu.run(prog);
    // The exit and the instruction it came after (a kick is seen at the same boundary).
    exits.push(exit, vcpu.block.f64[VcpuLayout.floats.INSTRUCTIONS]!);
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
  const F = VcpuLayout.floats;
  const counters = [F.INSTRUCTIONS, F.STORES, F.FAULTS, F.PUSHES, F.RING_FULL_EXITS, F.INTR_EXITS].map((k) => f[k]!);
  return { exits, entries, memory: new Uint8Array(fx.slot.mem32.buffer).slice(), counters };
}

describe('guest store fast path', () => {
  afterEach(() => pinStepPoints(false));

  for (const seed of [1, 2, 3]) {
    it(`gives exactly what the general loop gives (seed ${seed})`, () => {
      const general = runScript(seed, true);
      const fast = runScript(seed, false);
      expect(general.exits.at(-2)).toBe(KVM_EXIT_HLT);
      // The script has work for every path: kicks, I/O exits, ring-full exits.
      expect(general.exits).toContain(KVM_EXIT_INTR);
      expect(general.exits).toContain(KVM_EXIT_IO);
      expect(general.exits).toContain(KVM_EXIT_DIRTY_RING_FULL);
      expect(fast.exits).toEqual(general.exits);
      expect(fast.entries).toEqual(general.entries);
      expect(fast.counters).toEqual(general.counters);
      expect(Buffer.from(fast.memory).equals(Buffer.from(general.memory)), `seed ${seed}: guest memory differs`).toBe(true);
    });
  }
});
