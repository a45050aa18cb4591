/**
 * A guest program made of an explicit queue of stores (and loads): what deterministic
 * scenarios and unit tests run. When the queue is empty the guest halts (KVM_EXIT_HLT).
 */
import { type GuestProgram, InsnKind, type Instruction, type StoreBlock } from './instruction.js';

export interface ScriptedStoreOptions {
  /** Stores per page; more than 1 makes the instruction an emulated one (each store logged). */
  readonly storesPerPage?: number;
  /** Leave KVM_RUN (KVM_EXIT_IO) after each store, like a guest doing port I/O. */
  readonly exitEach?: boolean;
  /** The value stored (default: the program's `value`). */
  readonly value?: number;
  /** Force the emulated path for these stores (as for a write-tracked page). */
  readonly emulated?: boolean;
}

const SMI_MARK = -1;
const RSM_MARK = -2;

export class ScriptedProgram implements GuestProgram {
  private gfns: number[] = [];
  /** Stores per page; 0 marks a load, SMI_MARK and RSM_MARK an SMM transition. */
  private stores: number[] = [];
  private exits: boolean[] = [];
  private values: number[] = [];
  private emulated: boolean[] = [];
  private head = 0;
  /** Value stored when a store does not say. */
  value = 1;

  /** Queue one store per page (or `storesPerPage`), in order. */
  enqueue(gfns: readonly number[], options: ScriptedStoreOptions = {}): this {
    for (const gfn of gfns) {
      this.gfns.push(gfn);
      this.stores.push(options.storesPerPage ?? 1);
      this.exits.push(options.exitEach ?? false);
      this.values.push(options.value ?? -1);
      this.emulated.push(options.emulated ?? false);
    }
    return this;
  }

  /** Queue one load per page, in order (loads never log; `exitEach` as for stores). */
  enqueueLoads(gfns: readonly number[], options: { readonly exitEach?: boolean } = {}): this {
    for (const gfn of gfns) {
      this.gfns.push(gfn);
      this.stores.push(0);
      this.exits.push(options.exitEach ?? false);
      this.values.push(-1);
      this.emulated.push(false);
    }
    return this;
  }

  /** Queue an SMI (enter SMM: address space 1) or an RSM (leave it), on a VM with SMM. */
  enqueueSmm(enter: boolean): this {
    this.gfns.push(0);
    this.stores.push(enter ? SMI_MARK : RSM_MARK);
    this.exits.push(false);
    this.values.push(-1);
    this.emulated.push(false);
    return this;
  }

  get remaining(): number {
    return this.gfns.length - this.head;
  }

  /** Block decode: the queued plain stores from the head on, up to the first of another value. */
  peekStores(block: StoreBlock, max: number): number {
    const gfns = block.gfns;
    let value = 0;
    let n = 0;
    for (let i = this.head; n < max && i < this.gfns.length; i++, n++) {
      // A plain hardware store: one store per page, not emulated, no exit after it (see decode).
      if (this.stores[i] !== 1 || this.emulated[i] || this.exits[i]) break;
      const v = this.values[i]! >= 0 ? this.values[i]! : this.value;
      if (n === 0) value = v;
      else if (v !== value) break;
      gfns[n] = this.gfns[i]!;
    }
    // Stores with one stride between their pages go out as a strided run (a guest loop over
    // pages), the others as a list: a script exercises both forms.
    let stride = n >= 2 ? gfns[1]! - gfns[0]! : 0;
    for (let k = 2; k < n && stride !== 0; k++) if (gfns[k]! - gfns[k - 1]! !== stride) stride = 0;
    block.first = gfns[0]!;
    block.stride = stride;
    block.value = value;
    return n;
  }

  consumeStores(n: number): void {
    this.head += n;
  }

  decode(insn: Instruction): void {
    if (this.head >= this.gfns.length) {
      insn.kind = InsnKind.HALT;
      insn.count = 0;
      return;
    }
    const i = this.head++;
    const stores = this.stores[i]!;
    if (stores < 0) {
      insn.kind = stores === SMI_MARK ? InsnKind.SMI : InsnKind.RSM;
      insn.count = 0;
      insn.exitAfter = false;
      return;
    }
    insn.kind = stores === 0 ? InsnKind.LOAD : stores > 1 || this.emulated[i] ? InsnKind.EMULATED : InsnKind.STORE;
    insn.count = 1;
    insn.gfns[0] = this.gfns[i]!;
    insn.storesPerPage = stores;
    insn.exitAfter = this.exits[i]!;
    const v = this.values[i]!;
    insn.value = v >= 0 ? v : this.value;
  }
}
