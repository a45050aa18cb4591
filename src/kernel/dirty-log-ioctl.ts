/**
 * Bitmap logging's ioctls and its writes with no running vCPU (kvm_main.c): KVM_GET_DIRTY_LOG,
 * KVM_CLEAR_DIRTY_LOG and mark_page_dirty_in_slot without a vCPU (docs/PROTOCOL.md, section 5;
 * their errors in section 6). The bitmap operations themselves are in dirty-bitmap.ts.
 */
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_USER_MEM_SLOTS, slotAsId, slotId } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { debugChecks } from '../base/assert.js';
import { coverage, noteBitmapSet, noteRecord } from './coverage.js';
import { BitmapLogPlan } from './dirty-log-plan.js';
import { CLEAR_ALIGN_PAGES, clearAndProtect, copyLive, exchangeAndProtect, setDirtyBit } from './dirty-bitmap.js';
import { copyOut, showArg, slotArg, u64NumberArg, userBitmapArg } from './ioctl-args.js';
import { Memslot, bitmapBytes, checkBitmapShape } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { flushRemoteTlbs } from './vcpu-requests.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';
import { chargeMmuHold, countReprotected } from './vm-stats.js';

const VM_FLOATS = VmLayout.floats;
/** num_pages is a u32. */
const U32_MAX = 0xffffffff;

/** What a write with no running vCPU did to the dirty log (markPageDirtyNoVcpu). */
export const NoVcpuMark = {
  /** The slot does not log dirty pages (or has no bitmap yet): nothing to record. */
  NOT_LOGGING: 0,
  LOGGED: 1,
  /** A ring VM without ring-with-bitmap: the kernel WARNs and the page is never reported. */
  LOST: 2,
} as const;
export type NoVcpuMark = (typeof NoVcpuMark)[keyof typeof NoVcpuMark];

export class DirtyLogIoctl {
  /** The slot the last GET or CLEAR named (bitmapSlot). */
  private lastSlot: Memslot | null = null;
  /** The plan of each slot view GET or CLEAR named, by memslot table index (dirty-log-plan.ts). */
  private readonly plans: (BitmapLogPlan | null)[] = [];
  /** The plan of the slot the last GET or CLEAR named, or null. */
  private lastPlan: BitmapLogPlan | null = null;

  constructor(private readonly vm: VmCore) {}

  /**
   * KVM_GET_DIRTY_LOG into `out`: bytes, ALIGN(npages, 64) / 8 of them, bit n = page n (a
   * Uint8Array, or a Uint32Array over the same bytes; ioctl-args.ts).
   * Legacy (manual protect off): under mmu_lock exchange each non-zero word with 0 and
   * write-protect those pages, flush TLBs if anything was taken, then copy the snapshot out —
   * overwriting the first ALIGN(npages, 64) / 8 bytes of `out`. A NULL buffer is EFAULT, and in
   * legacy mode the bits are already gone by then, as in the kernel (observed). A buffer of the
   * wrong type or too short is EFAULT before anything changes (userBitmapArg says why).
   * Manual protect: copy the live bitmap; nothing is cleared or protected.
   */
  getDirtyLog(slotEnc: number, out: Uint8Array | Uint32Array | null): void {
    const plan = this.lastPlan;
    if (plan !== null && plan.slotEnc === slotEnc && plan.tryGet(out)) return;
    this.vm.slotsLock.lock();
    try {
      const slot = this.bitmapSlot(slotEnc);
      const bytes = bitmapBytes(slot.pageCount);
      const words = userBitmapArg(out, bytes);
      this.vm.block.f64[VM_FLOATS.GET_CALLS]! += 1;
      if ((this.vm.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) {
        if (words === null || out === null) throw new KvmError('EFAULT', 'NULL dirty_bitmap', 'dirty_bitmap');
        copyLive(slot, words);
        copyOut(out, words, bytes);
        return;
      }
      // The kernel exchanges into the second half of its bitmap allocation and then copies that
      // to the user; with a good buffer the copy is not observable, so exchange straight into it.
      // A NULL buffer still consumes the bits (into the slot's own second half), as in the kernel.
      this.exchangeUnderMmuLock(slot, words ?? slot.bitmapSnapshot!);
      if (words === null || out === null) throw new KvmError('EFAULT', 'NULL dirty_bitmap (the dirty bits were already consumed)', 'dirty_bitmap');
      copyOut(out, words, bytes);
    } finally {
      this.vm.slotsLock.unlock();
    }
  }

  /**
   * KVM_CLEAR_DIRTY_LOG: clear the bits of `mask` (bit i = page firstPage + i) and
   * write-protect only the pages whose bits were actually set. Checks, in the kernel's order:
   * ENXIO (ring without bitmap), EINVAL (as_id/id), EINVAL (first_page % 64, before the slot
   * lookup), ENOENT (no slot or no bitmap), EINVAL (range rules), EFAULT (buffer). Nothing
   * changes unless every check passes.
   */
  clearDirtyLog(slotEnc: number, firstPage: number, numPages: number, mask: Uint8Array | Uint32Array | null): void {
    const plan = this.lastPlan;
    if (plan !== null && plan.slotEnc === slotEnc && plan.tryClear(firstPage, numPages, mask)) return;
    this.vm.slotsLock.lock();
    try {
      const slot = this.bitmapSlot(slotEnc, firstPage);
      checkClearRange(slot, firstPage, numPages);
      // copy_from_user of ALIGN(num_pages, 64) / 8 bytes: with num_pages 0 nothing is read, so
      // even a NULL bitmap succeeds (observed on 6.18; docs/PROTOCOL.md, section 8).
      const bytes = bitmapBytes(numPages);
      const words = userBitmapArg(mask, bytes);
      if (bytes > 0 && words === null) throw new KvmError('EFAULT', 'NULL dirty_bitmap', 'dirty_bitmap');
      this.vm.block.f64[VM_FLOATS.CLEAR_CALLS]! += 1;
      if (numPages === 0 || words === null) return; // (words is null only when num_pages is 0)
      if (this.clearUnderMmuLock(slot, firstPage, numPages, words) > 0) flushRemoteTlbs(this.vm);
    } finally {
      this.vm.slotsLock.unlock();
    }
  }

  /**
   * mark_page_dirty_in_slot with no running vCPU (a device's DMA): the slot's bitmap when it
   * has one (a bitmap VM, or a ring VM with ring-with-bitmap); a ring VM without it cannot log
   * the write — the kernel WARNs and the page is lost. Returns what became of the record.
   */
  markPageDirtyNoVcpu(slot: Memslot, page: number): NoVcpuMark {
    if (!(slot instanceof Memslot)) throw new KvmError('EINVAL', 'slot is not a memslot of this VM', 'slot');
    if (!Number.isInteger(page) || page < 0 || page >= slot.pageCount) {
      throw new KvmError('EINVAL', `page ${String(page)} is not a page of memslot ${slot.id}`, 'page');
    }
    if (!slot.logDirty) return NoVcpuMark.NOT_LOGGING;
    if (this.vm.ringBytes !== 0 && !this.vm.ringWithBitmap) {
      this.vm.warn();
      this.vm.block.f64[VM_FLOATS.NO_VCPU_WRITES_LOST]! += 1;
      return NoVcpuMark.LOST;
    }
    const bitmap = slot.bitmap;
    // Logging on but no bitmap yet: a flags change in progress; the kernel sets no bit either.
    if (bitmap === null || !slot.hasBitmap) return NoVcpuMark.NOT_LOGGING;
    setDirtyBit(bitmap, page);
    if (coverage.active) {
      noteRecord(slot);
      noteBitmapSet(page);
    }
    return NoVcpuMark.LOGGED;
  }

  // ------------------------------------------------------------------------------------------

  /**
   * The slot checks GET and CLEAR share, in the kernel's order (ENXIO, EINVAL, ENOENT). The
   * previous call's slot, while still the table's view of its entry, is taken without a lookup:
   * its encoding passed the same checks then, and a harvester asks for the same slots again.
   */
  private bitmapSlot(slotEnc: number, firstPage?: number): Memslot {
    const vm = this.vm;
    if (!vm.usesDirtyBitmap) throw new KvmError('ENXIO', 'the VM logs through dirty rings, not bitmaps', 'slot');
    const last = this.lastSlot;
    const cached = last !== null && slotEnc === last.encodedSlot && vm.memslots.stillAt(last) ? last : null;
    let asId = 0;
    let id = 0;
    if (cached === null) {
      slotArg(slotEnc);
      asId = slotAsId(slotEnc);
      id = slotId(slotEnc);
      if (asId >= vm.addressSpaces) throw new KvmError('EINVAL', `as_id ${asId} out of range`, 'slot');
      if (id >= KVM_USER_MEM_SLOTS) throw new KvmError('EINVAL', `slot id ${id} out of range`, 'slot');
    }
    // CLEAR checks alignment before it looks the slot up.
    if (firstPage !== undefined) u64NumberArg(firstPage, 'first_page');
    if (firstPage !== undefined && firstPage % CLEAR_ALIGN_PAGES !== 0 && !vm.hasMutant(KernelMutant.CLEAR_UNALIGNED)) {
      throw new KvmError('EINVAL', `first_page ${firstPage} is not a multiple of ${CLEAR_ALIGN_PAGES}`, 'first_page');
    }
    const slot = cached ?? vm.memslots.findById(asId, id);
    if (!slot || !slot.hasBitmap || !slot.bitmap) {
      throw new KvmError('ENOENT', slot ? `slot ${id} does not log dirty pages` : `slot ${id} does not exist`, 'slot');
    }
    if (debugChecks) checkBitmapShape(slot);
    this.lastSlot = slot;
    this.lastPlan = this.planOf(slot);
    return slot;
  }

  /** `slot`'s plan: the one made for this view when there is one (a GET or CLEAR allocates nothing then). */
  private planOf(slot: Memslot): BitmapLogPlan | null {
    const plan = this.plans[slot.tableIndex];
    if (plan !== undefined && plan !== null && plan.slot === slot) return plan;
    const made = BitmapLogPlan.of(this.vm, slot);
    this.plans[slot.tableIndex] = made;
    return made;
  }

  /** Legacy GET under mmu_lock; flushes TLBs when it took any bit. */
  private exchangeUnderMmuLock(slot: Memslot, snapshot: Uint32Array): void {
    const vm = this.vm;
    let reprotected = -1;
    vm.mmuLock.lock();
    try {
      reprotected = exchangeAndProtect(slot, snapshot, !vm.hasMutant(KernelMutant.LEGACY_GET_NO_PROTECT));
    } finally {
      vm.mmuLock.unlock();
      chargeMmuHold(vm.block.f64, vm.mmuLock, VM_FLOATS.MMU_HOLD_GET_TOTAL_NS, VM_FLOATS.MMU_HOLD_GET_MAX_NS);
    }
    if (reprotected >= 0) {
      countReprotected(vm, reprotected);
      flushRemoteTlbs(vm);
    }
  }

  /** CLEAR's bit work under mmu_lock; returns how many bits it cleared. */
  private clearUnderMmuLock(slot: Memslot, firstPage: number, numPages: number, mask: Uint32Array): number {
    const vm = this.vm;
    let cleared = 0;
    vm.mmuLock.lock();
    try {
      const r = clearAndProtect(slot, firstPage, numPages, mask);
      cleared = r.cleared;
      countReprotected(vm, r.reprotected);
    } finally {
      vm.mmuLock.unlock();
      chargeMmuHold(vm.block.f64, vm.mmuLock, VM_FLOATS.MMU_HOLD_CLEAR_TOTAL_NS, VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS);
    }
    return cleared;
  }
}

/**
 * CLEAR's range rules (EINVAL). Values a u64 first_page or u32 num_pages cannot hold are
 * checked after the slot checks, so that a ring VM still answers ENXIO first whatever the
 * arguments (docs/PROTOCOL.md, section 6).
 */
function checkClearRange(slot: Memslot, firstPage: number, numPages: number): void {
  if (!Number.isSafeInteger(firstPage) || firstPage < 0) throw new KvmError('EINVAL', `bad first_page ${showArg(firstPage)}`, 'first_page');
  if (!Number.isInteger(numPages) || numPages < 0 || numPages > U32_MAX) {
    throw new KvmError('EINVAL', `bad num_pages ${showArg(numPages)}`, 'num_pages');
  }
  const npages = slot.pageCount;
  if (firstPage > npages) throw new KvmError('EINVAL', `first_page ${firstPage} is past the slot end (${npages})`, 'first_page');
  if (numPages > npages - firstPage) {
    throw new KvmError('EINVAL', `num_pages ${numPages} runs past the slot end (${npages - firstPage} left)`, 'num_pages');
  }
  if (numPages < npages - firstPage && numPages % CLEAR_ALIGN_PAGES !== 0) {
    throw new KvmError('EINVAL', `num_pages ${numPages} must be a multiple of ${CLEAR_ALIGN_PAGES} unless it reaches the slot end`, 'num_pages');
  }
}
