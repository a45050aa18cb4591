/**
 * KVM_RESET_DIRTY_RINGS (kvm_main.c's kvm_vm_ioctl_reset_dirty_pages and dirty_ring.c's
 * kvm_reset_dirty_gfn): walk every vCPU's ring under slots_lock, then re-protect the pages of
 * each coalesced batch under mmu_lock, and flush every TLB once (docs/PROTOCOL.md, section 4).
 * The walk of one ring and the coalescing are `DirtyRing.resetWalk` and `ResetBatch`.
 */
import { KVM_USER_MEM_SLOTS, slotAsId, slotId } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { assert } from '../base/assert.js';
import { coverage, noteReprotectBatch } from './coverage.js';
import { ResetBatch, highestBit } from './reset-batch.js';
import { SpteBits } from './memslot-layout.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { modelledWriteProtect } from './mmu-wmm.js';
import { Step, stepHook } from './step-hook.js';
import { mem } from './wmm/mem.js';
import { KERNEL_WAIT_TIMEOUT_MS } from './sync.js';
import { flushRemoteTlbs } from './vcpu-requests.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';

const VM_FLOATS = VmLayout.floats;
const MMU_HOLD_RESET_TOTAL = VM_FLOATS.MMU_HOLD_RESET_TOTAL_NS;
const MMU_HOLD_RESET_MAX = VM_FLOATS.MMU_HOLD_RESET_MAX_NS;
// Literals here rather than abi's U32_RANGE / U32_BITS: the batch flush runs for every reset
// batch, and an imported binding there measurably slowed reset walks of scattered pages.
/** Offsets are u64 values held as two u32 halves (hi × 2^32 + lo). */
const U32_RANGE = 2 ** 32;
/** A batch's u64 mask is held as two u32 halves, low half first. */
const MASK_HALVES = 2;
const MASK_HALF_BITS = 32;
/** The literals `protectMask` uses in place of these definitions (module bindings are reloaded in its loop). */
const PROTECT_LITERALS: readonly [number, number][] = [
  [MASK_HALF_BITS, 32],
  [~SpteBits.WRITABLE, -2],
];
for (const [defined, literal] of PROTECT_LITERALS) {
  assert(defined === literal, `protectMask uses ${literal} where its definition is now ${defined}`);
}

/**
 * mmu_lock hold times of reset batches are measured on one batch in this many (a power of two):
 * batches are many and short, and two clock reads (≈ 45 ns each) cost about as much as a
 * batch's lock round and re-protection. One in 8 still took a tenth of a reset of 4096 scattered
 * entries (one batch each); one in 64 leaves a total that is still an unbiased estimate.
 */
const RESET_HOLD_SAMPLE = 64;

export class RingReset {
  private readonly batch = new ResetBatch();
  /** The slot the reset looked up last (valid while slots_lock is held, see resetDirtyGfn). */
  private slotEnc = -1;
  private slot: Memslot | null = null;
  /** The VM's address spaces, read once per ioctl (fixed at VM creation). */
  private addressSpaces = 1;
  /**
   * This call's mmu_lock hold so far, summed over its batches (sampled like the total). The
   * reset's maximum is the largest per-call sum, so that it is on the same terms as the mean
   * (total / calls): a batch's hold alone would let the mean exceed the maximum.
   */
  private callHoldNs = 0;
  /** This call's re-protected pages, added to the VM's statistics once at its end. */
  private callReprotected = 0;
  /** The reset-wrap-check mutant, read once per ioctl (set when the VM is made). */
  private wrapCheckMutant = false;
  private readonly sink = (slot: number, offLo: number, offHi: number, maskLo: number, maskHi: number): void =>
    this.resetDirtyGfn(slot, offLo, offHi, maskLo, maskHi);

  constructor(private readonly vm: VmCore) {}

  /**
   * Walk every vCPU's ring in index order, consuming entries userspace marked RESET and
   * re-protecting the pages they name; one VM-wide TLB flush at the end if anything was
   * consumed. Returns the number of entries consumed over all rings, bad ones included.
   * `signalPending` models a pending signal: the walk stops early with a partial count.
   */
  resetDirtyRings(signalPending?: () => boolean): number {
    const vm = this.vm;
    if (vm.ringBytes === 0) throw new KvmError('EINVAL', 'the VM has no dirty ring', 'vm');
    let cleared = 0;
    this.callHoldNs = 0;
    this.callReprotected = 0;
    const f = vm.block.f64;
    vm.slotsLock.lock();
    try {
      cleared = this.walkAllRings(signalPending);
    } finally {
      vm.slotsLock.unlock();
      // Summed per call rather than per batch: two shared Float64 updates per batch cost
      // about as much as the batch's Atomics.and on a scattered reset.
      f[MMU_HOLD_RESET_TOTAL]! += this.callHoldNs;
      f[VM_FLOATS.PAGES_REPROTECTED]! += this.callReprotected;
    }
    if (this.callHoldNs > f[MMU_HOLD_RESET_MAX]!) f[MMU_HOLD_RESET_MAX] = this.callHoldNs;
    f[VM_FLOATS.RESET_CALLS]! += 1;
    f[VM_FLOATS.ENTRIES_RESET]! += cleared;
    // Re-protection is complete only once no vCPU can still store through a stale TLB entry.
    if (cleared > 0 && !vm.hasMutant(KernelMutant.NO_TLB_FLUSH)) flushRemoteTlbs(vm);
    return cleared;
  }

  /** Each ring in vCPU order, with one INT_MAX budget over all of them. Caller holds slots_lock. */
  private walkAllRings(signalPending: (() => boolean) | undefined): number {
    this.addressSpaces = this.vm.addressSpaces;
    this.wrapCheckMutant = this.vm.hasMutant(KernelMutant.RESET_WRAP_CHECK);
    this.slotEnc = -1;
    this.slot = null;
    let cleared = 0;
    const n = this.vm.createdVcpus;
    for (let i = 0; i < n; i++) {
      const ring = this.vm.ring(i);
      if (!ring) continue;
      cleared += ring.resetWalk(this.batch, this.sink, cleared, signalPending);
      if (signalPending && signalPending()) break;
    }
    return cleared;
  }

  /**
   * kvm_reset_dirty_gfn: re-arm logging for `offset + k` for each bit k of the mask, unless the
   * batch names no valid page. Invalid batches are skipped silently (the entries still count).
   * The range checks: `offset < npages` stands on its own since 577a8d3bae05, because
   * `offset + fls(mask)` is u64 arithmetic and wraps for offsets near 2^64 (the mutant
   * reset-wrap-check drops it again); then `offset + fls(mask) < npages` as a wrapping u64 sum.
   *
   * One function, called once per batch: the walk's per-entry loop stays small when this is
   * not inlined into it, and splitting it into steps measurably slowed reset walks.
   */
  private resetDirtyGfn(slotEnc: number, offLo: number, offHi: number, maskLo: number, maskHi: number): void {
    if (maskLo === 0 && maskHi === 0) return;
    const f = this.vm.block.f64;
    const asId = slotAsId(slotEnc);
    const id = slotId(slotEnc);
    if (asId >= this.addressSpaces || id >= KVM_USER_MEM_SLOTS) {
      f[VM_FLOATS.RESET_BATCHES_SKIPPED]! += 1;
      return;
    }
    // slots_lock is held for the whole reset, so a slot looked up once stays valid for it.
    if (slotEnc !== this.slotEnc) {
      this.slotEnc = slotEnc;
      this.slot = this.vm.memslots.findById(asId, id);
    }
    const slot = this.slot;
    const npages = slot === null ? 0 : slot.pageCount;
    const sumLo = offLo + highestBit(maskLo, maskHi);
    const sumHi = (offHi + (sumLo >= U32_RANGE ? 1 : 0)) >>> 0;
    if (
      slot === null ||
      (!this.wrapCheckMutant && (offHi !== 0 || offLo >= npages)) ||
      sumHi !== 0 ||
      // sumLo % 2^32 without the float `%` (a library call in V8): sumLo < 2^32 + 64.
      (sumLo >= U32_RANGE ? sumLo - U32_RANGE : sumLo) >= npages
    ) {
      f[VM_FLOATS.RESET_BATCHES_SKIPPED]! += 1;
      return;
    }
    if (stepHook.active) {
      stepHook.at(Step.RESET_REPROTECT, offLo, maskLo);
      if (coverage.active) noteReprotectBatch(slotEnc, maskHi);
    }
    const lock = this.vm.mmuLock;
    let reprotected = 0;
    lock.lock(KERNEL_WAIT_TIMEOUT_MS, RESET_HOLD_SAMPLE);
    try {
      // offHi 0 with the checks passed: every page offset + bit is below npages (and below
      // 2^31, an Int32Array index), so the common case needs no per-page range check.
      if (offHi === 0 && !mem.active) reprotected = protectMask(slot.spte, offLo, maskLo, maskHi);
      else reprotected = this.protectMaskChecked(slot, npages, offLo, offHi, maskLo, maskHi);
    } finally {
      lock.unlock();
      this.callHoldNs += lock.lastHoldNs;
    }
    this.callReprotected += reprotected;
  }

  /**
   * The batch's pages one by one with the page index as a u64: only the wrapped check (mutant
   * reset-wrap-check) lets offHi != 0 through, and then the kernel would index the rmap out of
   * bounds — counted as a kernel bug instead. Also the path of the weak memory model.
   */
  private protectMaskChecked(slot: Memslot, npages: number, offLo: number, offHi: number, maskLo: number, maskHi: number): number {
    const f = this.vm.block.f64;
    let reprotected = 0;
    for (let half = 0; half < MASK_HALVES; half++) {
      let bits = half === 0 ? maskLo >>> 0 : maskHi >>> 0;
      while (bits !== 0) {
        const b = MASK_HALF_BITS - 1 - Math.clz32(bits);
        bits = (bits & ~(1 << b)) >>> 0;
        const pageLo = offLo + half * MASK_HALF_BITS + b;
        const pageHi = offHi + (pageLo >= U32_RANGE ? 1 : 0);
        if (pageHi % U32_RANGE !== 0 || pageLo % U32_RANGE >= npages) {
          f[VM_FLOATS.KERNEL_BUGS]! += 1;
          continue;
        }
        if (mem.active) modelledWriteProtect(slot.spte, pageLo % U32_RANGE);
        else Atomics.and(slot.spte, pageLo % U32_RANGE, ~SpteBits.WRITABLE);
        reprotected++;
      }
    }
    return reprotected;
  }
}

/**
 * Clear WRITABLE in the SPTE of page `offset + k` for each bit k of the mask (halves low, high),
 * every page known to be in the slot. Returns the pages named. The float `%` of the checked
 * path is a library call in V8 for values past int32, and it cost more than the Atomics.and.
 */
function protectMask(spte: Int32Array, offset: number, maskLo: number, maskHi: number): number {
  // Literals (32 bits a half, ~WRITABLE = -2), checked at module load: see PROTECT_LITERALS.
  let n = 0;
  let bits = maskLo | 0;
  while (bits !== 0) {
    const b = 31 - Math.clz32(bits);
    bits ^= 1 << b;
    Atomics.and(spte, offset + b, -2);
    n++;
  }
  bits = maskHi | 0;
  const high = offset + 32;
  while (bits !== 0) {
    const b = 31 - Math.clz32(bits);
    bits ^= 1 << b;
    Atomics.and(spte, high + b, -2);
    n++;
  }
  return n;
}
