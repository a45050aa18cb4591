/**
 * A controlled vCPU's guest program: in iteration k it stores k into each page of its list for
 * that iteration, in order, then halts until the iteration changes. Stores left over when the
 * final sync interrupts an iteration are dropped (the pending one is retried, as after any
 * stop, with the value it had loaded). The dirty_log_test writer, but scripted.
 *
 * Pages from `smmFrom` on are SMRAM, in address space 1: the program enters SMM (an SMI)
 * before a store there and leaves it (rsm) before the next store to RAM.
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { type GuestProgram, InsnKind, type Instruction } from '../../guest/instruction.js';

const ITERATION = GuestGlobalsLayout.words.ITERATION;

export class RoundProgram implements GuestProgram {
  private round = -1;
  private next = 0;
  private inSmm = false;

  constructor(
    /** rounds[k]: page offsets for iteration k + 1. */
    private readonly rounds: readonly (readonly number[])[],
    private readonly baseGfn: number,
    private readonly globals: Int32Array,
    /** The first SMRAM page (the scenario's page count when it has none). */
    private readonly smmFrom: number = Number.POSITIVE_INFINITY,
  ) {}

  decode(insn: Instruction): void {
    const iteration = Atomics.load(this.globals, ITERATION);
    if (iteration !== this.round) {
      this.round = iteration;
      this.next = 0;
    }
    const list = this.rounds[iteration - 1];
    if (list === undefined || this.next >= list.length) {
      insn.kind = InsnKind.HALT;
      insn.count = 0;
      return;
    }
    const page = list[this.next]!;
    insn.exitAfter = false;
    if (page >= this.smmFrom !== this.inSmm) {
      this.inSmm = !this.inSmm;
      insn.kind = this.inSmm ? InsnKind.SMI : InsnKind.RSM;
      insn.count = 0;
      return;
    }
    this.next++;
    insn.kind = InsnKind.STORE;
    insn.count = 1;
    insn.gfns[0] = this.baseGfn + page;
    insn.value = iteration;
    insn.storesPerPage = 1;
    insn.exitAfter = false;
  }
}
