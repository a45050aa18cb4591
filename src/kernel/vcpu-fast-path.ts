/**
 * The guest store fast path (docs/PERFORMANCE.md, section 2): runs of guest stores whose pages
 * hit the software TLB, written out by hand — exactly what VcpuMmu.hardwareStore and writePage
 * do on a hit with no step hook, minus the calls. Two forms: per instruction (`hitStores`, any
 * program) and per block (`hitStoreBlock`, a program with block decode: one call into the
 * program per block of stores instead of one decode per store, which was most of what the
 * path cost over the stores themselves). `Vcpu` extends this class; its run loop makes the
 * instruction-boundary and periodic checks between calls.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { AssertionError, assert, debugChecks } from '../base/assert.js';
import { GUEST_PAGE_HEADER_WORDS, GuestPageWords } from '../guest/guest-memory.js';
import { type BlockGuestProgram, type GuestProgram, InsnKind, type Instruction, StoreBlock } from '../guest/instruction.js';
import { TLB_MASK } from './tlb.js';
import { DATA_WORDS, DATA_WORD_HASH, VcpuMmu } from './vcpu-mmu.js';

/** The literals the fast path uses in place of these definitions (see there why). */
const HIT_STORE_LITERALS: readonly [number, number][] = [
  [TLB_MASK, 2047],
  [InsnKind.STORE, 1],
  [PAGE_WORDS, 1024],
  [DATA_WORDS, 1020],
  [DATA_WORD_HASH, 0x9e3779b1],
  [GUEST_PAGE_HEADER_WORDS, 4],
  [GuestPageWords.ITERATION_LO, 0],
  [GuestPageWords.ITERATION_HI, 1],
  [GuestPageWords.WRITER_VCPU, 2],
  [GuestPageWords.WRITER_SEQ, 3],
];
for (const [defined, literal] of HIT_STORE_LITERALS) {
  assert(defined === literal, `VcpuFastPath uses ${literal} where its definition is now ${defined}`);
}

/** Why `hitStores` stopped (`VcpuFastPath.hitStop`). */
export const HitStop = {
  /** It completed `limit` instructions. */
  LIMIT: 0,
  /** It decoded an instruction that is not a TLB-hit store: in `insn`, not yet executed. */
  DECODED: 1,
  /** Its last store asked to leave KVM_RUN afterwards (exitAfter). */
  EXIT_AFTER: 2,
} as const;


/** The fast path's forms, between VcpuMmu (the write path) and Vcpu (the run loop). */
export class VcpuFastPath extends VcpuMmu {
  /** Why the last `hitStores` or `hitStoreBlock` stopped (HitStop). */
  protected hitStop: number = HitStop.LIMIT;

  /**
   * The guest store fast path, by hand: decode and execute up to `limit` instructions while each
   * is a hardware store whose page hits the software TLB — exactly what `hardwareStore` and
   * `writePage` do on a hit with no step hook — keeping the sequence number and the count in
   * locals. Stops early at an instruction it cannot complete so, left decoded in `insn` and not
   * executed (`hitStop` DECODED), or after a store with exitAfter (EXIT_AFTER). The caller makes
   * the instruction-boundary and periodic checks between calls and counts the instructions;
   * with a step hook active it must not call this (the hit path's step points are skipped).
   * Returns the instructions completed.
   */
  protected hitStores(program: GuestProgram, insn: Instruction, limit: number): number {
    const gfns = insn.gfns;
    const { tags, slots, pages } = this.tlb;
    const writer = this.index;
    // Literals, checked against their definitions when this module loads (HIT_STORE_LITERALS):
    // V8 reloads and TDZ-checks a module binding at each use in a loop, and keeps a local copy
    // of one live in a register or stack slot, re-checked at each use; a literal it folds into
    // the instruction. In CPU time that was 46 → 67 → 76 M stores/s (bindings, copies, literals).
    const setMask = 2047; // TLB_MASK
    const STORE = 1; // InsnKind.STORE
    const pageWords = 1024; // PAGE_WORDS
    const dataWords = 1020; // DATA_WORDS
    const hash = 0x9e3779b1; // DATA_WORD_HASH
    let seq = this.seq;
    let done = 0;
    let stop: number = HitStop.LIMIT;
    while (done < limit) {
      program.decode(insn);
      const gfn = gfns[0]!;
      const set = (gfn >>> 0) & setMask;
      if (insn.kind !== STORE || tags[set] !== gfn) {
        stop = HitStop.DECODED;
        break;
      }
      // writePage's stores (writePageHeader, then the data word), written out here.
      seq = (seq + 1) >>> 0;
      const m = slots[set]!.mem32;
      const base = pages[set]! * pageWords;
      const value = insn.value;
      m[base] = value; // GuestPageWords.ITERATION_LO = 0, then ITERATION_HI, WRITER_VCPU, WRITER_SEQ
      m[base + 1] = 0;
      m[base + 2] = writer;
      m[base + 3] = seq;
      m[base + 4 + (seq % dataWords)] = (seq ^ Math.imul(value, hash)) >>> 0; // after GUEST_PAGE_HEADER_WORDS = 4
      done++;
      // `=== true`: a pointer compare, where a bare truthiness test of a field is a type switch.
      if (insn.exitAfter === true) {
        stop = HitStop.EXIT_AFTER;
        break;
      }
    }
    this.seq = seq;
    this.stores += done;
    this.hitStop = stop;
    return done;
  }

  /** The block of decoded stores (block decode), reused: the fast path allocates nothing. */
  private readonly storeBlock = new StoreBlock();
  /** Debug checks: a second block, to check that peeking consumed nothing. */
  private readonly blockCheck = debugChecks ? new StoreBlock() : null;

  /**
   * `hitStores` for a program with block decode: peek a block of plain stores, execute its
   * prefix that hits the TLB, consume that prefix. The first store that misses (or an
   * instruction the program does not block-decode) is left to `hitStores`, which decodes it
   * afresh — so nothing decoded outlives the call, and no value loaded for a block is stored
   * after an exit. `limit` ≤ MAX_STORE_BLOCK. Same result and `hitStop` as `hitStores`.
   */
  protected hitStoreBlock(program: BlockGuestProgram, insn: Instruction, limit: number): number {
    const block = this.storeBlock;
    const gfns = block.gfns;
    const { tags, mems, pages } = this.tlb;
    // `| 0`: an int32 the stores take as it is (a number field may be kept as a double).
    const writer = this.index | 0;
    // Literals, as in hitStores (checked against their definitions at load).
    const setMask = 2047; // TLB_MASK
    const pageWords = 1024; // PAGE_WORDS
    const dataWords = 1020; // DATA_WORDS
    const hash = 0x9e3779b1; // DATA_WORD_HASH
    let seq = this.seq;
    let done = 0;
    while (done < limit) {
      const max = limit - done;
      const n = program.peekStores(block, max);
      // Not `assert`: its message would be built on every call.
      if (!(n >= 0 && n <= max && n === (n | 0))) throw new AssertionError(`peekStores returned ${n} stores for at most ${max}`);
      if (this.blockCheck !== null) this.checkPeekConsumesNothing(program, n);
      // `| 0`: the same words as the number itself (stores and Math.imul take it modulo 2^32).
      const value = block.value | 0;
      const first = block.first;
      const stride = block.stride;
      let j = 0;
      for (; j < n; j++) {
        const gfn = stride !== 0 ? first + j * stride : gfns[j]!;
        const set = (gfn >>> 0) & setMask;
        if (tags[set] !== gfn) break;
        seq = (seq + 1) >>> 0;
        const m = mems[set]!;
        const base = pages[set]! * pageWords;
        m[base] = value; // as in hitStores: header words 0..3, then the data word after them
        m[base + 1] = 0;
        m[base + 2] = writer;
        m[base + 3] = seq;
        m[base + 4 + (seq % dataWords)] = (seq ^ Math.imul(value, hash)) >>> 0;
      }
      if (j > 0) program.consumeStores(j);
      done += j;
      if (j < n || n === 0) {
        this.seq = seq;
        this.stores += done;
        return done + this.hitStores(program, insn, max - j);
      }
    }
    this.seq = seq;
    this.stores += done;
    this.hitStop = HitStop.LIMIT;
    return done;
  }

  /** Debug checks: a second peek must give the same block (the first consumed nothing). */
  private checkPeekConsumesNothing(program: BlockGuestProgram, n: number): void {
    const again = this.blockCheck!;
    const first = this.storeBlock;
    const m = program.peekStores(again, n);
    const same = m === n && again.value === first.value && again.stride === first.stride && (first.stride === 0 || again.first === first.first);
    assert(same, `peekStores gave ${m} stores of ${again.value} where the same peek gave ${n} of ${first.value}, or another stride`);
    if (first.stride !== 0) return;
    for (let j = 0; j < n; j++) assert(again.gfns[j] === first.gfns[j], `peekStores consumed its block: store ${j} went from gfn ${first.gfns[j]} to ${again.gfns[j]}`);
  }
}
