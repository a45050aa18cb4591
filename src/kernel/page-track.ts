import { PAGE_SIZE } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { showArg } from './ioctl-args.js';
import { SharedBlock } from '../abi/layout.js';
import { SpteBits } from './memslot-layout.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { GFN_TRACK_MAX_COUNT, type PageTrackBlock, PageTrackLayout, type PageTrackVcpuBlock, PageTrackVcpuLayout, pageTrackBufferLayout } from './page-track-layout.js';
import type { PageTrackNotifier } from './page-track-node.js';
import { type PendingReader, TrackNotifierList } from './track-notifier-list.js';
import { flushRemoteTlbs } from './vcpu-requests.js';
import type { VmCore } from './vm-core.js';
import { NS_PER_MS } from '../base/clock.js';

export type { PendingReader } from './track-notifier-list.js';

const P = PageTrackLayout.words;
const PF = PageTrackLayout.floats;
const VF = PageTrackVcpuLayout.floats;
const WRITABLE = SpteBits.WRITABLE;
const TRACKED = SpteBits.WRITE_TRACKED;

export interface PageTrackStats {
  adds: number;
  removes: number;
  overflowWarnings: number;
  underflowWarnings: number;
  trackedGfns: number;
  activeNotifiers: number;
  notifiersRegistered: number;
  notifiersUnregistered: number;
  gracePeriods: number;
  /** Grace periods that found a reader inside the notifier list and had to wait for it. */
  gracePeriodsWaited: number;
  graceWaitTotalMs: number;
  graceWaitMaxMs: number;
  removeRegionNotifications: number;
  /** Emulated writes handed to the notifier list, all vCPUs. */
  notifiedWrites: number;
  /** Emulated writes to write-tracked pages, all vCPUs. */
  trackedWrites: number;
  notifierCalls: number;
}

export class PageTrack {
  readonly buffer: SharedArrayBuffer;
  readonly block: PageTrackBlock;
  /** The notifier list, for callers on the write path (one call less than the methods below). */
  readonly notifiers: TrackNotifierList;

  constructor(
    private readonly vm: VmCore,
    readonly maxVcpus: number,
    buffer?: SharedArrayBuffer,
  ) {
    this.buffer = buffer ?? new SharedArrayBuffer(pageTrackBufferLayout(maxVcpus).bytes);
    this.block = new SharedBlock(PageTrackLayout, this.buffer, 0);
    this.notifiers = new TrackNotifierList(vm, this.block, maxVcpus);
  }

  // ------------------------------------------------------------------------------------------
  // Write-track counts

  /** kvm_write_track_add_gfn. */
  addGfn(gfn: number): void {
    const slot = this.slotOf(gfn);
    const page = gfn - slot.baseGfn;
    const f = this.block.f64;
    let protectedNow = false;
    this.vm.mmuLock.lock();
    try {
      const count = Atomics.load(slot.gfnTrack, page);
      if (count >= GFN_TRACK_MAX_COUNT) {
        // WARN_ON_ONCE(val + count > USHRT_MAX): nothing changes.
        f[PF.OVERFLOW_WARNINGS]! += 1;
        this.vm.warn();
        return;
      }
      Atomics.store(slot.gfnTrack, page, count + 1);
      f[PF.ADDS]! += 1;
      if (count === 0) Atomics.add(this.block.i32, P.TRACKED_GFNS, 1);
      // WRITE_TRACKED first, then WRITABLE: a fault that read the SPTE before either change
      // fails its compare-and-swap and retries, and then sees WRITE_TRACKED.
      const before = Atomics.or(slot.spte, page, TRACKED);
      const old = Atomics.and(slot.spte, page, ~WRITABLE);
      protectedNow = (before & TRACKED) === 0 || (old & WRITABLE) !== 0;
    } finally {
      this.vm.mmuLock.unlock();
    }
    // The emulator's vCPUs never take mmu_lock, so flushing after the unlock is equivalent to
    // the kernel's flush under it, and keeps mmu_lock hold times about the lock's own work.
    if (protectedNow && !this.vm.hasMutant(KernelMutant.TRACK_NO_TLB_FLUSH)) flushRemoteTlbs(this.vm);
  }

  /** kvm_write_track_remove_gfn. The page stays write-protected until its next fault. */
  removeGfn(gfn: number): void {
    const slot = this.slotOf(gfn);
    const page = gfn - slot.baseGfn;
    const f = this.block.f64;
    this.vm.mmuLock.lock();
    try {
      const count = Atomics.load(slot.gfnTrack, page);
      if (count === 0) {
        // WARN_ON_ONCE(val + count < 0): nothing changes.
        f[PF.UNDERFLOW_WARNINGS]! += 1;
        this.vm.warn();
        return;
      }
      Atomics.store(slot.gfnTrack, page, count - 1);
      f[PF.REMOVES]! += 1;
      if (count === 1) {
        Atomics.and(slot.spte, page, ~TRACKED);
        Atomics.sub(this.block.i32, P.TRACKED_GFNS, 1);
      }
    } finally {
      this.vm.mmuLock.unlock();
    }
  }

  /** The write-track count of `gfn` (EINVAL outside every memslot). */
  count(gfn: number): number {
    const slot = this.slotOf(gfn);
    return Atomics.load(slot.gfnTrack, gfn - slot.baseGfn);
  }

  /** kvm_gfn_is_write_tracked. */
  isGfnTracked(gfn: number): boolean {
    return this.count(gfn) > 0;
  }

  /**
   * A moved memslot gets fresh metadata in the kernel (kvm_alloc_memslot_metadata on MOVE), so
   * its counts start again from 0; trackers learn of it through track_remove_region. Caller
   * holds slots_lock and has told the notifiers.
   */
  clearSlotTracking(slot: Memslot): void {
    this.vm.mmuLock.lock();
    try {
      for (let p = 0; p < slot.pageCount; p++) {
        if (Atomics.exchange(slot.gfnTrack, p, 0) !== 0) Atomics.sub(this.block.i32, P.TRACKED_GFNS, 1);
        Atomics.and(slot.spte, p, ~TRACKED);
      }
    } finally {
      this.vm.mmuLock.unlock();
    }
  }

  /** A deleted memslot's tracked pages vanish with it. Caller holds slots_lock. */
  forgetSlot(slot: Memslot): void {
    let tracked = 0;
    for (let p = 0; p < slot.pageCount; p++) if (Atomics.load(slot.gfnTrack, p) !== 0) tracked++;
    if (tracked > 0) Atomics.sub(this.block.i32, P.TRACKED_GFNS, tracked);
  }

  private slotOf(gfn: number): Memslot {
    if (!Number.isSafeInteger(gfn) || gfn < 0) throw new KvmError('EINVAL', `gfn ${showArg(gfn)} is not a guest frame number`, 'gfn');
    // gfn_to_memslot in address space 0, as kvm_write_track_{add,remove}_gfn do.
    const slot = this.vm.memslots.findByGfn(0, gfn);
    if (!slot) throw new KvmError('EINVAL', `gfn 0x${gfn.toString(16)} is in no memslot`, 'gfn');
    return slot;
  }

  // ------------------------------------------------------------------------------------------
  // The notifier list (track-notifier-list.ts)

  /** This vCPU's SRCU word and write-notification statistics. */
  vcpuBlock(index: number): PageTrackVcpuBlock {
    return this.notifiers.vcpuBlock(index);
  }

  get activeNotifiers(): number {
    return this.notifiers.activeNotifiers;
  }

  reserveNotifier(): { id: number; generation: number } {
    return this.notifiers.reserveNotifier();
  }

  attachNotifier(id: number, generation: number, instance: PageTrackNotifier): void {
    this.notifiers.attachNotifier(id, generation, instance);
  }

  activateNotifier(id: number, generation: number): void {
    this.notifiers.activateNotifier(id, generation);
  }

  cancelReservation(id: number, generation: number): void {
    this.notifiers.cancelReservation(id, generation);
  }

  registerNotifier(instance: PageTrackNotifier): number {
    return this.notifiers.registerNotifier(instance);
  }

  unregisterNotifier(id: number): void {
    this.notifiers.unregisterNotifier(id);
  }

  beginUnregister(id: number): Int32Array {
    return this.notifiers.beginUnregister(id);
  }

  pendingReader(snapshot: Int32Array): PendingReader | null {
    return this.notifiers.pendingReader(snapshot);
  }

  endUnregister(id: number, waited: boolean, elapsedMs: number): void {
    this.notifiers.endUnregister(id, waited, elapsedMs);
  }

  dropLocal(id: number): void {
    this.notifiers.dropLocal(id);
  }

  notifyWrite(vcpuIndex: number, gpa: number, bytes: Uint8Array, length: number, tracked: boolean): void {
    this.notifiers.notifyWrite(vcpuIndex, gpa, bytes, length, tracked);
  }

  notifyRemoveRegion(baseGfn: number, pageCount: number): void {
    this.notifiers.notifyRemoveRegion(baseGfn, pageCount);
  }

  // ------------------------------------------------------------------------------------------

  stats(): PageTrackStats {
    const f = this.block.f64;
    let notifiedWrites = 0;
    let trackedWrites = 0;
    let notifierCalls = 0;
    const n = this.vm.createdVcpus;
    for (let i = 0; i < n; i++) {
      const vf = this.vcpuBlock(i).f64;
      notifiedWrites += vf[VF.NOTIFIED_WRITES]!;
      trackedWrites += vf[VF.TRACKED_WRITES]!;
      notifierCalls += vf[VF.NOTIFIER_CALLS]!;
    }
    return {
      adds: f[PF.ADDS]!,
      removes: f[PF.REMOVES]!,
      overflowWarnings: f[PF.OVERFLOW_WARNINGS]!,
      underflowWarnings: f[PF.UNDERFLOW_WARNINGS]!,
      trackedGfns: Atomics.load(this.block.i32, P.TRACKED_GFNS),
      activeNotifiers: this.activeNotifiers,
      notifiersRegistered: f[PF.NOTIFIERS_REGISTERED]!,
      notifiersUnregistered: f[PF.NOTIFIERS_UNREGISTERED]!,
      gracePeriods: f[PF.GRACE_PERIODS]!,
      gracePeriodsWaited: f[PF.GRACE_PERIODS_WAITED]!,
      graceWaitTotalMs: f[PF.GRACE_WAIT_TOTAL_NS]! / NS_PER_MS,
      graceWaitMaxMs: f[PF.GRACE_WAIT_MAX_NS]! / NS_PER_MS,
      removeRegionNotifications: f[PF.REMOVE_REGION_NOTIFICATIONS]!,
      notifiedWrites,
      trackedWrites,
      notifierCalls,
    };
  }
}

/** Guest physical address of a page of a slot. */
export function gpaOf(slot: Memslot, page: number): number {
  return (slot.baseGfn + page) * PAGE_SIZE;
}
