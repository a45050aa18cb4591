/**
 * The reset walk's coalescing (dirty_ring.c's kvm_dirty_ring_reset): consecutive entries of one
 * slot become one batch (slot, offset, 64-bit mask) — forward and backward, as the kernel merges
 * them — and each finished batch goes to the sink that re-protects its pages
 * (docs/PROTOCOL.md, section 4).
 */
import { assert, debugChecks } from '../base/assert.js';
import { Edge, coverage, hit } from './coverage.js';

/** Called by the reset walk for each coalesced batch: re-arm logging for `offset + bit`. */
export type ResetBatchSink = (slot: number, offLo: number, offHi: number, maskLo: number, maskHi: number) => void;

// Literals rather than abi's U32_RANGE / U32_BITS: `add` runs for every entry of a reset walk,
// where an imported binding is not folded to a constant.
/** A batch's mask is a u64: it covers 64 pages from its offset. */
const BATCH_PAGES = 64;
/** The mask and the offset are held as two u32 halves. */
const HALF_BITS = 32;
const U32_RANGE = 2 ** 32;
/** −64 as the low half of a u64 delta: a delta above it (with high half −1) is in (−64, 0). */
const MINUS_BATCH_PAGES_LO = U32_RANGE - BATCH_PAGES;

/**
 * The reset's open batch: (slot, offset, 64-bit mask), with the mask held as two u32 halves
 * and offsets as (hi, lo) u32 pairs so that the u64 arithmetic of the kernel (including the
 * wrap-around that 577a8d3bae05 is about) is exact without BigInt allocations.
 * Invariant while open: bit 0 of the mask is set, because the batch's offset is always one of
 * its entries (the first, or the lowest after a backward merge).
 */
export class ResetBatch {
  open = false;
  slot = 0;
  offLo = 0;
  offHi = 0;
  maskLo = 0;
  maskHi = 0;

  constructor() {
    // Debug builds check the batch before each step (swapped in once: see DirtyRing's push).
    if (debugChecks) {
      this.add = this.addChecked;
      this.finish = this.finishChecked;
    }
    // A thread that records coverage adds through a recording wrapper (installed once here, so
    // that `add` stays as it is in every other thread).
    if (coverage.active) this.add = recordingAdd(this.add);
  }

  add(slot: number, offLo: number, offHi: number, sink: ResetBatchSink): void {
    if (this.open && slot === this.slot) {
      // delta = next - cur as a signed 64-bit value, computed in u32 halves.
      const dLo = (offLo - this.offLo) >>> 0;
      const borrow = offLo >>> 0 < this.offLo >>> 0 ? 1 : 0;
      const dHi = (offHi - this.offHi - borrow) | 0;
      if (dHi === 0 && dLo < BATCH_PAGES) {
        // 0 <= delta < 64: same batch, set bit delta.
        if (dLo < HALF_BITS) this.maskLo = (this.maskLo | (1 << dLo)) >>> 0;
        else this.maskHi = (this.maskHi | (1 << (dLo - HALF_BITS))) >>> 0;
        return;
      }
      if (dHi === -1 && dLo > MINUS_BATCH_PAGES_LO) {
        // -64 < delta < 0: a backwards visit; move the batch start down if no set bit is
        // shifted out of the 64-bit mask.
        const shift = (U32_RANGE - dLo) >>> 0; // 1..63
        if (highestBit(this.maskLo, this.maskHi) + shift < BATCH_PAGES) {
          shiftMaskLeft(this, shift);
          this.maskLo = (this.maskLo | 1) >>> 0;
          this.offLo = offLo >>> 0;
          this.offHi = offHi >>> 0;
          return;
        }
      }
    }
    if (this.open) sink(this.slot, this.offLo, this.offHi, this.maskLo, this.maskHi);
    this.open = true;
    this.slot = slot;
    this.offLo = offLo >>> 0;
    this.offHi = offHi >>> 0;
    this.maskLo = 1;
    this.maskHi = 0;
  }

  finish(sink: ResetBatchSink): void {
    if (this.open) sink(this.slot, this.offLo, this.offHi, this.maskLo, this.maskHi);
    this.open = false;
  }

  private addChecked(slot: number, offLo: number, offHi: number, sink: ResetBatchSink): void {
    this.check();
    uncheckedAdd.call(this, slot, offLo, offHi, sink);
    this.check();
  }

  private finishChecked(sink: ResetBatchSink): void {
    this.check();
    uncheckedFinish.call(this, sink);
  }

  /** Debug: an open batch's halves are u32 and its offset's bit (bit 0) is set. */
  private check(): void {
    if (!this.open) return;
    const u32 = this.maskLo === this.maskLo >>> 0 && this.maskHi === this.maskHi >>> 0 && this.offLo === this.offLo >>> 0 && this.offHi === this.offHi >>> 0;
    assert(u32, `reset batch halves out of u32 range: mask ${this.maskHi}:${this.maskLo}, offset ${this.offHi}:${this.offLo}`);
    assert((this.maskLo & 1) === 1, `reset batch at offset ${this.offLo} does not contain its own offset (mask ${this.maskHi}:${this.maskLo})`);
  }
}

type AddStep = ResetBatch['add'];

/**
 * `add`, and which way the entry joined the batch, told from the batch before and after it:
 * a new batch of mask 1 at the entry's offset is a break (another slot, or too far away); an
 * offset moved down with more than bit 0 set is a backward merge; the same offset with a new
 * bit is a forward merge (a duplicate changes nothing and is not counted).
 */
function recordingAdd(inner: AddStep): AddStep {
  return function (this: ResetBatch, slot, offLo, offHi, sink) {
    const { open, slot: oldSlot, offLo: oldLo, offHi: oldHi, maskLo: oldMaskLo, maskHi: oldMaskHi } = this;
    inner.call(this, slot, offLo, offHi, sink);
    if (!open) return;
    const moved = oldSlot !== slot || oldLo !== this.offLo || oldHi !== this.offHi;
    if (!moved) {
      if (this.maskLo !== oldMaskLo || this.maskHi !== oldMaskHi) hit(Edge.COALESCE_FORWARD);
    } else if (this.maskLo === 1 && this.maskHi === 0) {
      hit(oldSlot !== slot ? Edge.COALESCE_BREAK_SLOT : Edge.COALESCE_BREAK_FAR);
    } else {
      hit(Edge.COALESCE_BACKWARD);
    }
  };
}

/**
 * The steps without checks, for the checked ones. Module bindings on purpose: naming the class
 * inside its own body would put every method one scope further from the module's constants.
 */
const uncheckedAdd = ResetBatch.prototype.add;
const uncheckedFinish = ResetBatch.prototype.finish;

/** __fls of a 64-bit mask given as halves; -1 for 0. */
export function highestBit(maskLo: number, maskHi: number): number {
  if (maskHi !== 0) return 2 * HALF_BITS - 1 - Math.clz32(maskHi);
  if (maskLo !== 0) return HALF_BITS - 1 - Math.clz32(maskLo);
  return -1;
}

function shiftMaskLeft(b: ResetBatch, shift: number): void {
  if (shift >= HALF_BITS) {
    b.maskHi = shift === HALF_BITS ? b.maskLo : (b.maskLo << (shift - HALF_BITS)) >>> 0;
    b.maskLo = 0;
  } else {
    b.maskHi = ((b.maskHi << shift) | (b.maskLo >>> (HALF_BITS - shift))) >>> 0;
    b.maskLo = (b.maskLo << shift) >>> 0;
  }
}
