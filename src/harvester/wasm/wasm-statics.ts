/**
 * The static variables of a C harvester on several threads, in a controlled run: they are how
 * its threads hand work to each other (a flag, an index, the entries one harvested for another
 * to reset), so each 32- or 64-bit access to them is what an access to `kvm.shared` is for a
 * TypeScript harvester — a step point, and under a weak `--memory-model` a modelled access with
 * the C code's ordering (a plain access and READ_ONCE / WRITE_ONCE unordered, smp_load_acquire
 * an acquire, smp_store_release a release). The stacks are private and stay unmodelled.
 *
 * A static word becomes a location of the model at its first access in the run: its key goes
 * into a table in the threads' shared-words buffer (after kvm.shared), so every thread numbers
 * it alike; the controlled scheduler runs one participant at a time, so the numbering is the
 * same on replay.
 */
import { Step, stepHook } from '../../kernel/step-hook.js';
import { mem } from '../../kernel/wmm/mem.js';
import { Access } from '../../kernel/wmm/ordering.js';
import { HARVESTER_SHARED_WORDS, HARVESTER_STATIC_LOCATIONS } from '../shared-words.js';
import { HarvesterAccess } from '../ring-mapping.js';

const KEY_WIDE = 1;
const KEY_NARROW = 2;

export class WasmStatics {
  private readonly keys: Int32Array;
  private i32: Int32Array;

  /** `end`: the first byte past the statics (the linker's stack starts there); `table`: the run's shared-words buffer. */
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly end: number,
    private readonly table: SharedArrayBuffer,
  ) {
    this.keys = new Int32Array(table, HARVESTER_SHARED_WORDS * 4 + HARVESTER_STATIC_LOCATIONS * 4, HARVESTER_STATIC_LOCATIONS);
    this.i32 = new Int32Array(memory.buffer);
  }

  /**
   * Off while the module is instantiated: its start function (wasm-ld's data initialisation)
   * stores a flag other instances wait on with memory.atomic.wait — a step point there would
   * park one thread while another waits for real.
   */
  enabled = false;

  /** Whether an access of `bytes` at `addr` is to a static word this models. */
  covers(addr: number, bytes: number): boolean {
    return this.enabled && addr < this.end && addr % bytes === 0;
  }

  load32(addr: number, access: number): number {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, addr, HarvesterAccess.SHARED_LOAD);
    const words = this.words();
    if (!mem.active) return Atomics.load(words, addr >>> 2);
    return mem.load(words, addr >>> 2, this.location(addr, KEY_NARROW), access);
  }

  store32(addr: number, value: number, access: number): void {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, addr, HarvesterAccess.SHARED_STORE);
    const words = this.words();
    if (!mem.active) Atomics.store(words, addr >>> 2, value | 0);
    else mem.store(words, addr >>> 2, this.location(addr, KEY_NARROW), value | 0, access);
  }

  load64(addr: number, access: number): bigint {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, addr, HarvesterAccess.SHARED_LOAD);
    const words = this.words();
    if (!mem.active) return Atomics.load(new BigInt64Array(this.memory.buffer, addr, 1), 0);
    const lo = mem.load64(words, addr >>> 2, this.location(addr, KEY_WIDE), access);
    return (BigInt(mem.hi) << 32n) | BigInt(lo >>> 0);
  }

  store64(addr: number, value: bigint, access: number): void {
    if (stepHook.active) stepHook.at(Step.HARVESTER_ACCESS, addr, HarvesterAccess.SHARED_STORE);
    if (!mem.active) {
      Atomics.store(new BigInt64Array(this.memory.buffer, addr, 1), 0, BigInt.asIntN(64, value));
      return;
    }
    const lo = Number(BigInt.asIntN(32, value));
    const hi = Number(BigInt.asIntN(32, value >> 32n));
    mem.store64(this.words(), addr >>> 2, this.location(addr, KEY_WIDE), lo, hi, access);
  }

  private words(): Int32Array {
    if (this.i32.buffer !== this.memory.buffer) this.i32 = new Int32Array(this.memory.buffer);
    return this.i32;
  }

  /** The model's location of the word at `addr`: found in the table, or given the next free one. */
  private location(addr: number, width: number): number {
    const key = addr | width;
    const n = HARVESTER_STATIC_LOCATIONS;
    let i = Math.imul(addr >>> 2, 0x9e3779b1) >>> 0;
    for (let probe = 0; probe < n; probe++, i++) {
      const slot = i % n;
      const k = Atomics.load(this.keys, slot);
      const found = k === 0 ? Atomics.compareExchange(this.keys, slot, 0, key) : k;
      if (found === 0 || found === key) return mem.base(this.table) + HARVESTER_SHARED_WORDS + slot;
    }
    throw new RangeError(`the harvester's threads touched more than ${HARVESTER_STATIC_LOCATIONS} static words in one controlled run (the model's limit): keep the state they share small`);
  }
}

/** The C code's ordering as the model's. */
export const StaticAccess = { PLAIN: Access.ONCE, ACQUIRE: Access.ACQUIRE, RELEASE: Access.RELEASE } as const;
