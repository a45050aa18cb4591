/** Guest programs the bench runs on an in-thread Vcpu (allocation-free decode). */
import { type GuestProgram, InsnKind, type Instruction } from '../../src/guest/instruction.js';

/** `count` stores, gfn = base + i × stride, then HLT. */
export class StrideProgram implements GuestProgram {
  private i = 0;
  private n = 0;
  private base = 0;
  private stride = 1;
  value = 1;

  set(baseGfn: number, count: number, stride: number): this {
    this.base = baseGfn;
    this.n = count;
    this.stride = stride;
    this.i = 0;
    return this;
  }

  decode(insn: Instruction): void {
    if (this.i >= this.n) {
      insn.kind = InsnKind.HALT;
      insn.count = 0;
      return;
    }
    insn.kind = InsnKind.STORE;
    insn.count = 1;
    insn.gfns[0] = this.base + this.i * this.stride;
    insn.value = this.value;
    insn.exitAfter = false;
    insn.storesPerPage = 1;
    this.i++;
  }
}

/** Stores to an explicit list of gfns (a Float64Array prefix), then HLT. */
export class ListProgram implements GuestProgram {
  private i = 0;
  private n = 0;
  private gfns: Float64Array = new Float64Array(0);
  value = 1;

  set(gfns: Float64Array, count: number): this {
    this.gfns = gfns;
    this.n = count;
    this.i = 0;
    return this;
  }

  decode(insn: Instruction): void {
    if (this.i >= this.n) {
      insn.kind = InsnKind.HALT;
      insn.count = 0;
      return;
    }
    insn.kind = InsnKind.STORE;
    insn.count = 1;
    insn.gfns[0] = this.gfns[this.i++]!;
    insn.value = this.value;
    insn.exitAfter = false;
    insn.storesPerPage = 1;
  }
}
