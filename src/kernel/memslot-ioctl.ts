/**
 * KVM_SET_USER_MEMORY_REGION (kvm_main.c's kvm_set_memory_region): create, delete (size 0), move,
 * or change the flags of a memslot, with every argument validated before anything changes
 * (docs/PROTOCOL.md, section 6). Turning LOG_DIRTY_PAGES on or off is where bitmap logging
 * starts and stops (section 5, "Enabling logging").
 */
import {
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_MAX_NR_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  PAGE_SIZE,
  encodeSlot,
  slotAsId,
  slotId,
} from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { debugChecks } from '../base/assert.js';
import { initBitmap } from './dirty-bitmap.js';
import { booleanArg, flagsArg, optionalBooleanArg, pageCountArg, showArg, slotArg, structArg, u16Arg, u64NumberArg } from './ioctl-args.js';
import { type Memslot, type SlotBuffers, type SlotPlacement, allocateSlotBuffers } from './memslots.js';
import type { PageTrack } from './page-track.js';
import { flushRemoteTlbs, requestAllAndWait } from './vcpu-requests.js';
import { VcpuRequest } from './vcpu-layout.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';
import { countReprotected } from './vm-stats.js';

/** KVM_SET_USER_MEMORY_REGION's argument, plus the backing memory (userspace_addr). */
export interface MemoryRegion {
  /** The slot as encodeSlot(as_id, id). */
  readonly slot: number;
  readonly flags: number;
  readonly guestPhysAddr: number;
  /** Bytes; 0 deletes the slot. */
  readonly memorySize: number;
  /** Backing memory; allocated when omitted. Must hold at least memorySize bytes. */
  readonly memory?: SharedArrayBuffer;
}

const VALID_FLAGS = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
/** A slot change must wait until no vCPU still uses the old slot (synchronize_srcu + zap). */
const SLOT_GONE_REQUEST = VcpuRequest.MEMSLOTS_UPDATED | VcpuRequest.TLB_FLUSH;

export class MemslotIoctl {
  constructor(
    private readonly vm: VmCore,
    private readonly pageTrack: PageTrack,
  ) {}

  /**
   * KVM_SET_USER_MEMORY_REGION: create, delete (memorySize 0), move, or change flags of a slot.
   * Everything is validated before anything changes.
   */
  setUserMemoryRegion(region: MemoryRegion): void {
    const at = decodeRegion(region, this.vm.addressSpaces);
    this.vm.slotsLock.with(() => {
      const index = this.vm.memslots.indexOfId(at.asId, at.id);
      if (region.memorySize === 0) {
        if (index < 0) throw new KvmError('EINVAL', `slot ${at.id} does not exist`, 'slot');
        this.deleteSlot(index);
      } else if (index < 0) {
        this.createSlot(at, region);
      } else {
        this.updateSlot(index, at, region.flags);
      }
      if (debugChecks) this.vm.memslots.checkConsistency();
    });
  }

  /** Convenience: a memslot of `pageCount` pages at `baseGfn` (KVM_SET_USER_MEMORY_REGION). */
  createMemslot(opts: { id: number; asId?: number; baseGfn: number; pageCount: number; logDirty?: boolean }): Memslot {
    structArg(opts, 'opts');
    const asId = u16Arg(opts.asId ?? 0, 'asId');
    const id = u16Arg(opts.id, 'id');
    const baseGfn = u64NumberArg(opts.baseGfn, 'baseGfn');
    const pageCount = pageCountArg(opts.pageCount);
    const logDirty = optionalBooleanArg(opts.logDirty, 'logDirty') ?? false;
    this.setUserMemoryRegion({
      slot: encodeSlot(asId, id),
      flags: logDirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
      guestPhysAddr: baseGfn * PAGE_SIZE,
      memorySize: pageCount * PAGE_SIZE, // not `<< PAGE_SHIFT`: 2 GiB and up overflow 32 bits
    });
    return this.vm.memslots.findById(asId, id)!;
  }

  /** Convenience: toggle LOG_DIRTY_PAGES on an existing slot (a flags-only region update). */
  setLogDirty(id: number, on: boolean, asId = 0): void {
    u16Arg(id, 'id');
    booleanArg(on, 'on');
    u16Arg(asId, 'asId');
    const slot = this.vm.memslots.findById(asId, id);
    if (!slot) throw new KvmError('EINVAL', `slot ${id} does not exist`, 'slot');
    const flags = on ? slot.flags | KVM_MEM_LOG_DIRTY_PAGES : slot.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
    this.setUserMemoryRegion({
      slot: encodeSlot(asId, id),
      flags,
      guestPhysAddr: slot.baseGfn * PAGE_SIZE,
      memorySize: slot.pageCount * PAGE_SIZE,
    });
  }

  /** Convenience: delete a slot. */
  deleteMemslot(id: number, asId = 0): void {
    u16Arg(id, 'id');
    u16Arg(asId, 'asId');
    this.setUserMemoryRegion({ slot: encodeSlot(asId, id), flags: 0, guestPhysAddr: 0, memorySize: 0 });
  }

  // ------------------------------------------------------------------------------------------
  // The four changes, under slots_lock

  private createSlot(at: SlotPlacement, region: MemoryRegion): void {
    this.checkOverlap(at, -1);
    const table = this.vm.memslots;
    const index = table.firstFreeIndex();
    if (index < 0) throw new KvmError('ENOSPC', 'the emulator memslot table is full', 'slot');
    if (region.memory && region.memory.byteLength < region.memorySize) {
      throw new KvmError('EFAULT', 'backing memory is smaller than memory_size', 'userspace_addr');
    }
    const fresh = allocate(at.pageCount);
    const buffers: SlotBuffers = region.memory ? { ...fresh, memory: region.memory } : fresh;
    table.attach(index, buffers);
    table.activate(index, at);
    this.bumpGeneration();
    // New SPTEs are not present (0): the first write faults. Logging starts like a flags change.
    this.changeFlags(index, region.flags, true);
  }

  private deleteSlot(index: number): void {
    const old = this.vm.memslots.at(index)!;
    this.vm.memslots.deactivate(index);
    this.bumpGeneration();
    // Like synchronize_srcu + zap: no vCPU may still use the old slot when this returns.
    requestAllAndWait(this.vm, SLOT_GONE_REQUEST);
    // Page write-tracking: kvm_arch_flush_shadow_memslot tells every notifier (track_remove_region).
    this.pageTrack.forgetSlot(old);
    this.pageTrack.notifyRemoveRegion(old.baseGfn, old.pageCount);
  }

  /** An existing slot: neither its size nor READONLY may change; it may move, and take new flags. */
  private updateSlot(index: number, at: SlotPlacement, flags: number): void {
    const old = this.vm.memslots.at(index)!;
    if (old.pageCount !== at.pageCount) throw new KvmError('EINVAL', 'a memslot cannot be resized', 'memory_size');
    if (((old.flags ^ flags) & KVM_MEM_READONLY) !== 0) {
      throw new KvmError('EINVAL', 'READONLY cannot be toggled on an existing memslot', 'flags');
    }
    if (old.baseGfn !== at.baseGfn) {
      this.checkOverlap(at, index);
      this.moveSlot(index, at.baseGfn);
    }
    this.changeFlags(index, flags);
  }

  private moveSlot(index: number, baseGfn: number): void {
    const slot = this.vm.memslots.at(index)!;
    // Page write-tracking: a move flushes the old slot like a delete (track_remove_region at
    // the old base) and the moved slot starts with fresh counts, as its metadata is reallocated.
    this.pageTrack.notifyRemoveRegion(slot.baseGfn, slot.pageCount);
    this.pageTrack.clearSlotTracking(slot);
    this.vm.mmuLock.with(() => slot.writeProtectAll());
    this.vm.memslots.move(index, baseGfn);
    this.bumpGeneration();
    requestAllAndWait(this.vm, SLOT_GONE_REQUEST);
  }

  /**
   * Apply new flags. Turning LOG_DIRTY_PAGES on starts logging (`startLogging`); turning it
   * off drops the bitmap, and its bits with it.
   */
  private changeFlags(index: number, flags: number, created = false): void {
    const slot = this.vm.memslots.at(index)!;
    const oldFlags = created ? 0 : slot.flags;
    const logOn = (flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    const wasOn = (oldFlags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    if (logOn && !wasOn) {
      this.startLogging(index, slot, flags);
    } else {
      this.vm.memslots.setFlags(index, flags);
      if (!logOn && wasOn) this.vm.memslots.setHasBitmap(index, false);
    }
    this.bumpGeneration();
  }

  /**
   * Logging goes on: the bitmap (when bitmaps are in use) starts zeroed, or all ones under
   * INITIALLY_SET, and the whole slot is write-protected, except under INITIALLY_SET where
   * nothing is protected until CLEAR (with a ring: until a reset names the page). The flag is
   * published before the write-protect: a vCPU that made a page writable and then read
   * "logging off" did so before the protect below, which therefore wins.
   */
  private startLogging(index: number, slot: Memslot, flags: number): void {
    const initiallySet = (this.vm.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0;
    if (this.vm.usesDirtyBitmap) {
      initBitmap(slot, initiallySet);
      this.vm.memslots.setHasBitmap(index, true);
    }
    this.vm.memslots.setFlags(index, flags);
    // x86 kvm_mmu_slot_apply_flags skips the write-protect under INITIALLY_SET whether or not
    // the VM logs by ring: with a ring, pages made writable while logging was off are then
    // never logged (the hazard that keeps QEMU from enabling cap 168 with a ring). Derived from
    // the kernel source, not observable on an emulating host (docs/PROTOCOL.md, section 8).
    if (initiallySet) return;
    this.vm.mmuLock.with(() => countReprotected(this.vm, slot.writeProtectAll()));
    flushRemoteTlbs(this.vm);
  }

  private checkOverlap(at: SlotPlacement, ignoreIndex: number): void {
    for (const s of this.vm.memslots.active()) {
      if (s.tableIndex === ignoreIndex || s.asId !== at.asId) continue;
      if (at.baseGfn < s.baseGfn + s.pageCount && s.baseGfn < at.baseGfn + at.pageCount) {
        throw new KvmError('EEXIST', `gfn range overlaps memslot ${s.id}`, 'guest_phys_addr');
      }
    }
  }

  private bumpGeneration(): void {
    Atomics.add(this.vm.block.i32, VmLayout.words.MEMSLOTS_GEN, 1);
  }
}

/** The argument checks of KVM_SET_USER_MEMORY_REGION, in the kernel's order (all EINVAL). */
function decodeRegion(region: MemoryRegion, addressSpaces: number): SlotPlacement {
  // copy_from_user of the struct: something that is not one is EFAULT.
  structArg(region, 'region');
  const asId = slotAsId(slotArg(region.slot));
  const id = slotId(region.slot);
  flagsArg(region.flags, VALID_FLAGS);
  if (asId >= addressSpaces) throw new KvmError('EINVAL', `as_id ${asId} out of range`, 'slot');
  if (id >= KVM_USER_MEM_SLOTS) throw new KvmError('EINVAL', `slot id ${id} out of range`, 'slot');
  if (!isPageMultiple(region.memorySize)) {
    throw new KvmError('EINVAL', `memory_size ${showArg(region.memorySize)} is not a multiple of ${PAGE_SIZE}`, 'memory_size');
  }
  if (!isPageMultiple(region.guestPhysAddr)) {
    throw new KvmError('EINVAL', `guest_phys_addr ${showArg(region.guestPhysAddr)} is not page aligned`, 'guest_phys_addr');
  }
  // userspace_addr: the kernel refuses, with EINVAL, an address that access_ok() rejects; the
  // emulator's equivalent is backing memory that is not a SharedArrayBuffer at all.
  if (region.memory !== undefined && !(region.memory instanceof SharedArrayBuffer)) {
    throw new KvmError('EINVAL', `memory is not a SharedArrayBuffer`, 'userspace_addr');
  }
  const pageCount = region.memorySize / PAGE_SIZE;
  if (pageCount > KVM_MEM_MAX_NR_PAGES) throw new KvmError('EINVAL', `more than 2^31-1 pages`, 'memory_size');
  return { asId, id, pageCount, baseGfn: region.guestPhysAddr / PAGE_SIZE };
}

function isPageMultiple(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n % PAGE_SIZE === 0;
}

/**
 * The slot's own buffers (SPTEs, bitmaps, track counts; guest memory unless given), before
 * anything changes: KVM's vzalloc of the slot's metadata fails with ENOMEM, and so does this
 * when the JavaScript engine cannot allocate a buffer that large.
 */
function allocate(pageCount: number): SlotBuffers {
  try {
    return allocateSlotBuffers(pageCount, true);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new KvmError('ENOMEM', `cannot allocate the buffers of a ${pageCount}-page memslot (${e.message})`, 'memory_size');
  }
}
