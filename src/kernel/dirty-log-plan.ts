/**
 * GET and CLEAR of a slot that a harvester names call after call, over references taken once.
 *
 * A harvester's GET of a large, nearly clean slot does little work: a scan that finds a few
 * words. What it costs is reaching that work. After another process ran on the core, every
 * object between the ioctl and the bitmap's words is a cold cache line, and the general path
 * (dirty-log-ioctl.ts) goes through many: the slot table, the argument checks, the VM's
 * accessors, the lock objects, the vCPU table. A plan holds, for one memslot view, direct
 * references to all of them, and answers the call itself while everything it took for granted
 * still holds: the view is current and logs, the VM still uses bitmaps and has no mutant, and
 * no weak memory model or step hook is on. Anything else, and every error, goes to the general
 * path, which then does exactly what it would have done without a plan.
 */
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } from '../abi/constants.js';
import { debugChecks } from '../base/assert.js';
import type { BitmapScan } from './bitmap-simd-scan.js';
import { CLEAR_ALIGN_PAGES, bitmapWords, clearAndProtectScanned, exchangeScanned } from './dirty-bitmap.js';
import { type Memslot, checkBitmapShape } from './memslots.js';
import { stepHook } from './step-hook.js';
import { type SharedMutex } from './sync.js';
import { awaitAcks, postToAll } from './vcpu-requests.js';
import { VcpuRequest } from './vcpu-layout.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';
import { mem } from './wmm/mem.js';

const VM_WORDS = VmLayout.words;
const VM_FLOATS = VmLayout.floats;
const TLB_FLUSH = VcpuRequest.TLB_FLUSH;

/** One slot view's plan, made by DirtyLogIoctl after a GET or CLEAR of it passed the general checks. */
export class BitmapLogPlan {
  readonly slotEnc: number;
  private readonly vmWords: Int32Array;
  private readonly vmFloats: Float64Array;
  private readonly vcpuWords: readonly (Int32Array | undefined)[];
  private readonly slotsLock: SharedMutex;
  private readonly mmuLock: SharedMutex;
  private readonly liveWords: number;
  private readonly scan: BitmapScan;

  private constructor(
    private readonly vm: VmCore,
    readonly slot: Memslot,
    scan: BitmapScan,
  ) {
    this.slotEnc = slot.encodedSlot;
    this.vmWords = vm.block.i32;
    this.vmFloats = vm.block.f64;
    // The VM's own array, which attaching a vCPU fills in place: the plan sees later vCPUs.
    this.vcpuWords = vm.vcpuWords;
    this.slotsLock = vm.slotsLock;
    this.mmuLock = vm.mmuLock;
    this.liveWords = slot.bitmap!.length;
    this.scan = scan;
  }

  /** A plan for `slot`, which has just passed the general path's checks; null without the SIMD scan. */
  static of(vm: VmCore, slot: Memslot): BitmapLogPlan | null {
    return slot.bitmapScan === null || slot.bitmap === null ? null : new BitmapLogPlan(vm, slot, slot.bitmapScan);
  }

  /**
   * KVM_GET_DIRTY_LOG of this slot into `out`, as DirtyLogIoctl.getDirtyLog, when the plan
   * holds and `out` is a Uint32Array long enough; otherwise false, with nothing changed.
   */
  tryGet(out: Uint8Array | Uint32Array | null): boolean {
    if (!(out instanceof Uint32Array) || out.length < this.liveWords || mem.active || stepHook.active) return false;
    const slotsLock = this.slotsLock;
    slotsLock.lock();
    try {
      if (!this.holds()) return false;
      this.vmFloats[VM_FLOATS.GET_CALLS]! += 1;
      if ((Atomics.load(this.vmWords, VM_WORDS.MANUAL_PROTECT) & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) {
        out.set(this.slot.bitmapU32!);
        return true;
      }
      this.exchange(out);
      return true;
    } finally {
      slotsLock.unlock();
    }
  }

  /**
   * KVM_CLEAR_DIRTY_LOG of this slot, as DirtyLogIoctl.clearDirtyLog, for arguments that pass
   * its checks at once: first_page and num_pages aligned to 64-page words (or num_pages
   * reaching the slot's end), a Uint32Array mask long enough. Otherwise false, nothing changed.
   */
  tryClear(firstPage: number, numPages: number, mask: Uint8Array | Uint32Array | null): boolean {
    if (!(mask instanceof Uint32Array) || mem.active || stepHook.active) return false;
    // Whole 64-page words inside the slot, or a range up to its end: every check of the general
    // path passes for these (NaN and fractions fail here and go there, to get its error).
    const pageCount = this.slot.pageCount;
    if (!(firstPage >= 0 && numPages > 0 && numPages <= pageCount - firstPage)) return false;
    if (!Number.isInteger(firstPage) || !Number.isInteger(numPages) || firstPage % CLEAR_ALIGN_PAGES !== 0) return false;
    if ((numPages % CLEAR_ALIGN_PAGES !== 0 && numPages !== pageCount - firstPage) || mask.length < bitmapWords(numPages)) return false;
    const slotsLock = this.slotsLock;
    slotsLock.lock();
    try {
      if (!this.holds()) return false;
      this.vmFloats[VM_FLOATS.CLEAR_CALLS]! += 1;
      this.clear(firstPage, numPages, mask);
      return true;
    } finally {
      slotsLock.unlock();
    }
  }

  /** Whether the general path's checks would pass and take its fast branches (caller holds slots_lock). */
  private holds(): boolean {
    const w = this.vmWords;
    const usesBitmap = Atomics.load(w, VM_WORDS.RING_BYTES) === 0 || Atomics.load(w, VM_WORDS.RING_WITH_BITMAP) !== 0;
    const slot = this.slot;
    if (!usesBitmap || Atomics.load(w, VM_WORDS.MUTANTS) !== 0 || !slot.current || !slot.hasBitmap || slot.bitmapScan !== this.scan) return false;
    if (debugChecks) checkBitmapShape(slot);
    return true;
  }

  /** Legacy GET under mmu_lock, then the TLB flush when a bit was taken. */
  private exchange(out: Uint32Array): void {
    const f64 = this.vmFloats;
    const mmuLock = this.mmuLock;
    let reprotected = -1;
    mmuLock.lock();
    try {
      out.fill(0, 0, this.liveWords);
      reprotected = exchangeScanned(this.slot, out, true, this.scan);
    } finally {
      mmuLock.unlock();
      f64[VM_FLOATS.MMU_HOLD_GET_TOTAL_NS]! += mmuLock.lastHoldNs;
      if (mmuLock.lastHoldMeasuredNs > f64[VM_FLOATS.MMU_HOLD_GET_MAX_NS]!) f64[VM_FLOATS.MMU_HOLD_GET_MAX_NS] = mmuLock.lastHoldMeasuredNs;
    }
    if (reprotected < 0) return;
    f64[VM_FLOATS.PAGES_REPROTECTED]! += reprotected;
    this.flushTlbs();
  }

  /** CLEAR's bit work under mmu_lock, then the TLB flush when a bit was cleared. */
  private clear(firstPage: number, numPages: number, mask: Uint32Array): void {
    const f64 = this.vmFloats;
    const mmuLock = this.mmuLock;
    let cleared = 0;
    mmuLock.lock();
    try {
      const r = clearAndProtectScanned(this.slot, firstPage, numPages, mask, this.scan);
      cleared = r.cleared;
      f64[VM_FLOATS.PAGES_REPROTECTED]! += r.reprotected;
    } finally {
      mmuLock.unlock();
      f64[VM_FLOATS.MMU_HOLD_CLEAR_TOTAL_NS]! += mmuLock.lastHoldNs;
      if (mmuLock.lastHoldMeasuredNs > f64[VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS]!) f64[VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS] = mmuLock.lastHoldMeasuredNs;
    }
    if (cleared > 0) this.flushTlbs();
  }

  /** kvm_flush_remote_tlbs (vcpu-requests.ts) over the plan's reference to the vCPUs' words. */
  private flushTlbs(): void {
    const words = this.vcpuWords;
    postToAll(words, words.length, TLB_FLUSH);
    awaitAcks(this.vm, words, TLB_FLUSH);
    this.vmFloats[VM_FLOATS.TLB_FLUSHES]! += 1;
  }
}
