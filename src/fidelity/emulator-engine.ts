/**
 * The emulator engine of the fidelity feature: runs a `Scenario` deterministically, in the
 * calling thread, through the emulator's own kernel code — `Vm` (capabilities, vCPUs, memslots,
 * KVM_RESET_DIRTY_RINGS, GET/CLEAR_DIRTY_LOG, the ring mmap), `Vcpu.run` (KVM_RUN, with the
 * hardware fault path or, for `"path": "emulated"`, the kvm_vcpu_write_guest path that logs every
 * store) and the userspace helpers `harvestRing` / `writeRawEntry`. Nothing here decides what
 * the kernel does: this module only turns scenario steps into those calls and their outcomes
 * into `StepResult`s, exactly as `kvm-engine.ts` does with the native runner's answers.
 *
 * vCPUs are stepped in scenario order: a `run` step runs that one vCPU until it halts, exits for
 * a full ring, or (with `stopOnIo`) leaves for I/O — no other vCPU runs meanwhile, so the
 * result is a pure function of the scenario. See scenario.ts for the contract both engines obey.
 */
import {
  EMU_EXIT_PREEMPTED,
  KVM_EXIT_DIRTY_RING_FULL,
  KVM_EXIT_HLT,
  KVM_EXIT_IO,
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SIZE,
  encodeSlot,
} from '../abi/constants.js';
import { isKvmError } from '../abi/errno.js';
import { assert } from '../base/assert.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords, type RingViews } from '../abi/dirty-gfn.js';
import { ScriptedProgram } from '../guest/scripted.js';
import { type HarvestCursor, harvestRing, writeRawEntry } from '../kernel/dirty-ring.js';
import { bitmapWords } from '../kernel/dirty-bitmap.js';
import { Vcpu } from '../kernel/vcpu.js';
import { Vm } from '../kernel/vm.js';
import { CAP_NUMBERS, findMemslot, offsetValue } from './scenario.js';
import type {
  ClearDirtyLogStep, DirtyEntry, ExitName, GetDirtyLogStep, HarvestStep, Memslot, MmapRingStep, RawEntry, ReadStep, Scenario,
  Step, StepResult, WriteEntryStep, WriteStep,
} from './scenario.js';

/** A scenario the engine cannot run as written (not a kernel result): thrown, never returned. */
export class ScenarioError extends Error {
  constructor(scenario: Scenario, msg: string) {
    super(`emulator engine: scenario "${scenario.name}": ${msg}`);
    this.name = 'ScenarioError';
  }
}

/** One vCPU as the engine's userspace sees it: the kernel vCPU, its guest queue, its ring cursor. */
interface EngineVcpu {
  readonly vcpu: Vcpu;
  readonly program: ScriptedProgram;
  readonly cursor: HarvestCursor;
  /** Accesses queued so far (bounded like the native runner's queue). */
  queued: number;
}

/** Most accesses one vCPU may have queued over a scenario: the native runner's 1 GiB / 16 B. */
const MAX_QUEUED = 1 << 26;

/** Bits in one u32 word of the emulator's bitmaps. */
const U32_BITS = 32;
/** Bits in one u64 word of a CLEAR user bitmap: the runner passes max(1, ceil(num / 64)) words. */
const CLEAR_WORD_BITS = 64;
/**
 * GET buffer size, in pages, for a slot the scenario does not declare: such a GET fails before
 * the kernel touches the buffer, so one u64 word is enough.
 */
const UNDECLARED_SLOT_PAGES = 64;

/** An ioctl's result, or its errno when the kernel refuses; anything else is thrown on. */
function ioctlResult(f: () => StepResult): StepResult {
  try {
    return f();
  } catch (e) {
    if (isKvmError(e)) return { errno: e.errno };
    throw e;
  }
}

/** An ioctl whose only result is its success: `{ rc: 0 }`, or its errno. */
function ioctlStatus(f: () => unknown): StepResult {
  return ioctlResult(() => {
    f();
    return { rc: 0 };
  });
}

class EmulatorRun {
  readonly vm = Vm.create();
  readonly vcpus: EngineVcpu[] = [];

  constructor(readonly scenario: Scenario) {}

  fail(msg: string): never {
    throw new ScenarioError(this.scenario, msg);
  }

  declared(slot: number, asId: number): Memslot {
    const m = findMemslot(this.scenario.memslots, slot, asId);
    if (!m) this.fail(`slot ${slot} (asId ${asId}) is not declared`);
    return m;
  }

  /** KVM_SET_USER_MEMORY_REGION for a declared slot: (re-)register it, or delete it. */
  setMemslot(m: Memslot, logDirty: boolean, del: boolean): void {
    try {
      this.vm.setUserMemoryRegion({
        slot: encodeSlot(m.asId, m.slot),
        flags: logDirty && !del ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        guestPhysAddr: m.gpa,
        memorySize: del ? 0 : m.pages * PAGE_SIZE,
      });
    } catch (e) {
      // The emulator backs every page with real memory (the native runner uses MAP_NORESERVE).
      if (e instanceof RangeError) this.fail(`cannot allocate the ${m.pages} pages of memslot ${m.slot}: ${e.message}`);
      throw e;
    }
  }

  /** KVM_CREATE_VCPU, then what a VMM does next: a vCPU thread state, its guest, its ring cursor. */
  createVcpu(): void {
    const index = this.vm.createVcpu();
    const vcpu = new Vcpu(this.vm, index, { emulateAllStores: this.scenario.path === 'emulated' });
    this.vcpus[index] = { vcpu, program: new ScriptedProgram(), cursor: { fetchIndex: 0 }, queued: 0 };
  }

  vcpu(index: number): EngineVcpu {
    const v = this.vcpus[index];
    if (!v) this.fail(`vCPU ${index} does not exist`);
    return v;
  }

  /** The vCPU's guest queue, after checking that `n` more accesses fit. */
  queue(index: number, n: number): ScriptedProgram {
    const v = this.vcpu(index);
    if (v.queued + n > MAX_QUEUED) this.fail(`vCPU ${index} would queue more than ${MAX_QUEUED} accesses`);
    v.queued += n;
    return v.program;
  }

  /** The vCPU's ring as userspace maps it (MAP_SHARED, read/write). */
  ring(index: number): RingViews {
    this.vcpu(index);
    if (this.vm.ringBytes === 0 || this.vm.ring(index) === null) this.fail(`vCPU ${index} has no dirty ring`);
    return this.vm.mmapRing(index, { shared: true, exec: false });
  }

  setup(): void {
    const s = this.scenario;
    const setupStep = (what: string, f: () => void): void => {
      try {
        f();
      } catch (e) {
        if (isKvmError(e)) this.fail(`setup: ${what} failed: ${e.errno} (${e.detail})`);
        throw e;
      }
    };
    if (s.vm?.ring) {
      const { bytes, acqRel } = s.vm.ring;
      setupStep(`enabling the dirty ring (${bytes} bytes)`, () =>
        this.vm.enableCap(acqRel ? CAP_NUMBERS.dirtyRingAcqRel : CAP_NUMBERS.dirtyRing, bytes, 0),
      );
    }
    if (s.vm && s.vm.manualProtect !== 0) {
      const value = s.vm.manualProtect;
      setupStep(`enabling manual protect (${value})`, () => this.vm.enableCap(CAP_NUMBERS.manualProtect, value, 0));
    }
    for (const m of s.memslots) setupStep(`creating memslot ${m.slot}`, () => this.setMemslot(m, m.logDirty, false));
    for (let i = 0; i < s.vcpus; i++) setupStep(`creating vCPU ${i}`, () => this.createVcpu());
  }

  step(st: Step): StepResult {
    switch (st.op) {
      case 'write':
        return this.queueStores(st);
      case 'read':
        return this.queueLoads(st);
      case 'run':
        return this.run(st.vcpu, st.stopOnIo);
      case 'harvest':
        return this.harvest(st);
      case 'reset':
        return ioctlResult(() => ({ rc: 0, count: this.vm.resetDirtyRings() }));
      case 'getDirtyLog':
        return ioctlResult(() => ({ rc: 0, pages: this.getDirtyLog(st) }));
      case 'clearDirtyLog':
        return ioctlStatus(() => this.clearDirtyLog(st));
      case 'setMemslot':
        return ioctlStatus(() => this.setMemslot(this.declared(st.slot, st.asId), st.logDirty, st.delete));
      case 'enableCap':
        return ioctlStatus(() => this.vm.enableCap(CAP_NUMBERS[st.cap], st.bytes ?? BigInt(st.flags ?? 0), st.capFlags));
      case 'createVcpu':
        return ioctlStatus(() => this.createVcpu());
      case 'writeEntry':
        return this.writeEntry(st);
      case 'readEntry':
        return { rc: 0, entry: rawEntryResult(readRaw(this.ring(st.vcpu), st.index)) };
      case 'checkExtension':
        return { rc: 0, value: this.vm.checkExtension(CAP_NUMBERS[st.cap]) };
      case 'mmapRing':
        return this.mmapRing(st);
    }
  }

  private queueStores(st: WriteStep): StepResult {
    const m = this.declared(st.slot, st.asId);
    const program = this.queue(st.vcpu, st.pages.length * st.storesPerPage);
    const base = m.gpa / PAGE_SIZE;
    // Each store is its own guest instruction (the native guest's `movb`): on the fault path
    // only the first store to a protected page faults; `exitEach` leaves after every store.
    for (const p of st.pages) {
      for (let k = 0; k < st.storesPerPage; k++) program.enqueue([base + p], { exitEach: st.exitEach });
    }
    return { rc: 0 };
  }

  private queueLoads(st: ReadStep): StepResult {
    const m = this.declared(st.slot, st.asId);
    const base = m.gpa / PAGE_SIZE;
    this.queue(st.vcpu, st.pages.length).enqueueLoads(st.pages.map((p) => base + p), { exitEach: st.exitEach });
    return { rc: 0 };
  }

  /** Userspace's harvest of the vCPU's ring, from its own fetch index. */
  private harvest(st: HarvestStep): StepResult {
    const views = this.ring(st.vcpu);
    const entries: DirtyEntry[] = [];
    harvestRing(views, this.vcpu(st.vcpu).cursor, st.max ?? Number.POSITIVE_INFINITY, (slot, lo, hi) => {
      entries.push({ slot, offset: offsetValue(u64Of(lo, hi)) });
    }, st.flagsValue);
    return { rc: 0, entries };
  }

  /** KVM_GET_DIRTY_LOG into a buffer the size of the slot's bitmap; the pages whose bit is set. */
  private getDirtyLog(st: GetDirtyLogStep): number[] {
    const out = st.nullBitmap ? null : new Uint32Array(this.bitmapWordsFor(st.slot, st.asId));
    this.vm.getDirtyLog(encodeSlot(st.asId, st.slot), out);
    return out ? setBits(out) : [];
  }

  /** KVM_CLEAR_DIRTY_LOG with a user bitmap as the native runner passes it. */
  private clearDirtyLog(st: ClearDirtyLogStep): void {
    const mask = st.nullBitmap ? null : clearBitmap(st.num, st.pages.map((p) => p - st.first));
    this.vm.clearDirtyLog(encodeSlot(st.asId, st.slot), st.first, st.num, mask);
  }

  /** A raw store to a ring entry as a misbehaving userspace makes it: absent fields keep their value. */
  private writeEntry(st: WriteEntryStep): StepResult {
    const views = this.ring(st.vcpu);
    const cur = readRaw(views, st.index);
    writeRawEntry(views, st.index, st.flags ?? cur.flags, st.slot ?? cur.slot, st.offset ?? cur.offset);
    return { rc: 0 };
  }

  private mmapRing(st: MmapRingStep): StepResult {
    this.ring(st.vcpu);
    // The emulator's mapping has no protection of its own: `write` changes nothing here.
    return ioctlStatus(() => this.vm.mmapRing(st.vcpu, { shared: st.shared, exec: st.exec }));
  }

  /** u32 words of a GET buffer: the declared slot's bitmap (ALIGN(pages, 64) bits), else 64 bits. */
  private bitmapWordsFor(slot: number, asId: number): number {
    const m = findMemslot(this.scenario.memslots, slot, asId);
    return bitmapWords(m ? m.pages : UNDECLARED_SLOT_PAGES);
  }

  /** KVM_RUN, re-entered after I/O exits unless `stopOnIo` (scenario.ts, "How run treats exits"). */
  private run(index: number, stopOnIo: boolean): StepResult {
    const { vcpu, program } = this.vcpu(index);
    for (;;) {
      const exit = vcpu.run(program);
      let name: ExitName;
      switch (exit) {
        case KVM_EXIT_HLT:
          name = 'hlt';
          break;
        case KVM_EXIT_DIRTY_RING_FULL:
          name = 'dirty_ring_full';
          break;
        case KVM_EXIT_IO:
          if (!stopOnIo) continue;
          name = 'io';
          break;
        case EMU_EXIT_PREEMPTED:
          continue;
        default:
          name = `other:${exit}`;
      }
      return { rc: 0, exit: name };
    }
  }
}

/** A u64 from its u32 halves. */
function u64Of(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The raw entry at `index mod entries`: flags (acquire), slot, offset as a u64. */
function readRaw(views: RingViews, index: number): { flags: number; slot: number; offset: bigint } {
  const e = ((index >>> 0) & (views.entryCount - 1)) * DIRTY_GFN_WORDS;
  const flags = Atomics.load(views.i32, e + DirtyGfnWords.FLAGS) >>> 0;
  const slot = views.u32[e + DirtyGfnWords.SLOT]!;
  const offset = u64Of(views.u32[e + DirtyGfnWords.OFFSET_LO]!, views.u32[e + DirtyGfnWords.OFFSET_HI]!);
  return { flags, slot, offset };
}

function rawEntryResult(e: { flags: number; slot: number; offset: bigint }): RawEntry {
  return { flags: e.flags, slot: e.slot, offset: offsetValue(e.offset) };
}

/** Every set bit of a bitmap, ascending, padding bits included. */
function setBits(bitmap: Uint32Array): number[] {
  const pages: number[] = [];
  for (let w = 0; w < bitmap.length; w++) {
    for (let b = 0; b < U32_BITS; b++) if (((bitmap[w]! >>> b) & 1) !== 0) pages.push(w * U32_BITS + b);
  }
  return pages;
}

/** A CLEAR user bitmap of max(1, ceil(num / 64)) u64 words with the given bits set. */
function clearBitmap(num: number, bits: readonly number[]): Uint32Array {
  const words64 = Math.max(1, Math.ceil(num / CLEAR_WORD_BITS));
  const mask = new Uint32Array(words64 * (CLEAR_WORD_BITS / U32_BITS));
  for (const bit of bits) {
    // parseScenario keeps every page inside the bitmap; a bit outside would be silently dropped.
    assert(Number.isInteger(bit) && bit >= 0 && bit < mask.length * U32_BITS, `CLEAR bit ${bit} outside its ${mask.length * U32_BITS}-bit bitmap`);
    const w = Math.floor(bit / U32_BITS);
    mask[w] = (mask[w]! | (1 << (bit % U32_BITS))) >>> 0;
  }
  return mask;
}

/**
 * Runs a scenario on the emulator, deterministically, in this thread. Returns one result per
 * step. Throws a ScenarioError when the setup fails (as the kvm engine does) or a step cannot be
 * run as written (a ring operation on a vCPU without a ring).
 */
export function runScenarioOnEmulator(scenario: Scenario): StepResult[] {
  const run = new EmulatorRun(scenario);
  run.setup();
  return scenario.steps.map((st) => run.step(st));
}
