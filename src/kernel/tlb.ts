/**
 * A vCPU's software TLB: a small direct-mapped cache of "this gfn is writable", private to the
 * vCPU's thread. A hit lets the guest store without reading the SPTE, exactly the window that
 * makes KVM's re-protection incomplete until a remote TLB flush (see Vm.flushRemoteTlbs).
 */
import type { Memslot } from './memslots.js';

export const TLB_ENTRIES = 2048; // a power of two
export const TLB_MASK = TLB_ENTRIES - 1;

export class SoftTlb {
  // The arrays are readable by the guest store fast path (VcpuFastPath), which looks
  // entries up inline (set = gfn & TLB_MASK, hit when tags[set] === gfn); only this class writes them.
  /** Tag: the gfn cached in each set, or -1. */
  readonly tags = new Float64Array(TLB_ENTRIES).fill(-1);
  readonly slots: (Memslot | null)[] = new Array<Memslot | null>(TLB_ENTRIES).fill(null);
  readonly pages = new Int32Array(TLB_ENTRIES);
  /** The cached slot's guest memory (slots[set].mem32), one load less for the store fast path. */
  readonly mems: (Uint32Array | null)[] = new Array<Uint32Array | null>(TLB_ENTRIES).fill(null);
  /** Number of valid entries, so that flushing an empty TLB costs nothing. */
  private filled = 0;
  /**
   * A copy of which gfns are cached, in shared memory, for a checker in another thread (the
   * controlled scheduler's per-step invariant): byte gfn − mirrorBase is 1 while cached. Null
   * outside controlled runs: then insert and flush only test it.
   */
  private mirror: Uint8Array | null = null;
  private mirrorBase = 0;

  /** The cached slot for `gfn` when present (its page index via `pageOf`), else null. */
  lookup(gfn: number): Memslot | null {
    const t = (gfn >>> 0) & TLB_MASK;
    return this.tags[t] === gfn ? this.slots[t]! : null;
  }

  pageOf(gfn: number): number {
    return this.pages[(gfn >>> 0) & TLB_MASK]!;
  }

  insert(gfn: number, slot: Memslot, page: number): void {
    const t = (gfn >>> 0) & TLB_MASK;
    if (this.mirror !== null) this.mirrorInsert(this.tags[t]!, gfn);
    if (this.tags[t] === -1) this.filled++;
    this.tags[t] = gfn;
    this.slots[t] = slot;
    this.mems[t] = slot.mem32;
    this.pages[t] = page;
  }

  flush(): void {
    if (this.filled === 0) return;
    this.tags.fill(-1);
    this.slots.fill(null);
    this.mems.fill(null);
    this.filled = 0;
    if (this.mirror !== null) this.mirror.fill(0);
  }

  /** Keep a shared copy of the cached gfns from `base` on (one byte each, see `mirror`). */
  attachMirror(bytes: Uint8Array, base: number): void {
    this.mirror = bytes;
    this.mirrorBase = base;
    bytes.fill(0);
  }

  private mirrorInsert(evicted: number, gfn: number): void {
    const m = this.mirror!;
    if (evicted !== -1 && evicted - this.mirrorBase >= 0 && evicted - this.mirrorBase < m.length) m[evicted - this.mirrorBase] = 0;
    if (gfn - this.mirrorBase >= 0 && gfn - this.mirrorBase < m.length) m[gfn - this.mirrorBase] = 1;
  }

  get size(): number {
    return this.filled;
  }
}
