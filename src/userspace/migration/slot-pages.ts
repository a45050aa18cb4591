/**
 * Global page numbering over the migrated memslots (slot after slot), and the translation from
 * what the kernel reports — (encoded slot, offset) — to a global page. Built once.
 */
import type { Memslot } from '../../kernel/memslots.js';

export class SlotPages {
  readonly starts: Int32Array;
  readonly total: number;
  private readonly indexByEncoded = new Map<number, number>();

  constructor(readonly slots: readonly Memslot[]) {
    this.starts = new Int32Array(slots.length + 1);
    let start = 0;
    slots.forEach((s, i) => {
      this.indexByEncoded.set(s.encodedSlot, i);
      this.starts[i] = start;
      start += s.pageCount;
    });
    this.starts[slots.length] = start;
    this.total = start;
  }

  /** Global page of (encoded slot, u64 offset as halves), or -1 for a record naming no page. */
  globalPage(slotEnc: number, offLo: number, offHi: number): number {
    const i = this.indexByEncoded.get(slotEnc);
    if (i === undefined || offHi !== 0) return -1;
    const s = this.slots[i]!;
    return offLo < s.pageCount ? this.starts[i]! + offLo : -1;
  }

  /** Slot index (in `slots`) holding global page `g`. */
  slotIndexOf(g: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= g) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
