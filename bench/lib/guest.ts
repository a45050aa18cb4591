/** The guest program the bench runs on an in-thread Vcpu (allocation-free decode). */
import { type GuestProgram, InsnKind, type Instruction } from '../../src/guest/instruction.js';

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

/** Fill `out[0..count)` with base + i × stride (outside any timed region) and return `out`. */
export function strideGfns(out: Float64Array, baseGfn: number, count: number, stride: number): Float64Array {
  if (count > out.length) throw new Error(`strideGfns: ${count} gfns do not fit in ${out.length}`);
  for (let i = 0; i < count; i++) out[i] = baseGfn + i * stride;
  return out;
}
