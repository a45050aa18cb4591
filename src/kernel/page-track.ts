/**
 * Page write-tracking (arch/x86/kvm/mmu/page_track.c, kvm-dirty-tracking.md §5): per-page
 * write-track counts, and the notifiers told of every emulated write.
 *
 * Counts. One u16 per page per memslot (Memslot.gfnTrack), changed only under mmu_lock.
 *  - add: at 65535 WARN and change nothing; otherwise count + 1, and write-protect the page:
 *    set SpteBits.WRITE_TRACKED (the fault path then never makes the page writable) and clear
 *    WRITABLE. If either bit changed, flush every vCPU's TLB before returning, exactly like a
 *    dirty-log re-protect: a vCPU holding a writable TLB entry could otherwise keep storing to
 *    the page without a fault, and nobody would be told. KVM flushes when it clears the SPTE's
 *    MMU-writable bit too, which is why an already read-only page still gets the flush.
 *  - remove: at 0 WARN and change nothing; otherwise count − 1; at 0 clear WRITE_TRACKED. The
 *    page stays write-protected until its next write fault makes it writable.
 *  - both: EINVAL for a gfn in no memslot. "Tracked" = count > 0. The emulator models no huge
 *    pages, so there is no huge mapping to forbid.
 *
 * Notifiers. A table in shared memory (TrackNotifierLayout) plays the kernel's hlist; each
 * thread holds its own instance of each registered notifier (page-track-notifier.ts). Write
 * notifications run in the vCPU's thread inside an SRCU-like read section: the vCPU bumps its
 * SRCU_SEQ word to odd before it reads the table and back to even after the last callback.
 * Unregister unlinks the entry first and then waits, for each vCPU whose word was odd, until
 * the word moves. With sequentially consistent Atomics either a reader bumped its word before
 * the unlink — then unregister sees it odd and waits for the whole read section — or it reads
 * the table after the unlink and never calls the notifier. So when unregister returns no
 * callback of that notifier is running and none will start. A vCPU that keeps re-entering
 * cannot starve it: any change of the word ends the wait. Memslot ioctls (remove-region) use
 * a shared reader count instead (IOCTL_READERS). Every wait is bounded.
 */
import { PAGE_SIZE } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { GFN_TRACK_MAX_COUNT, MAX_TRACK_NOTIFIERS, type PageTrackBlock, PageTrackLayout, type PageTrackVcpuBlock, PageTrackVcpuLayout, type TrackNotifierBlock, TrackNotifierLayout, TrackNotifierState, pageTrackBufferLayout } from './page-track-layout.js';
import { SharedBlock } from '../abi/layout.js';
import { SpteBits } from './memslot-layout.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import type { PageTrackNotifier, TrackWriteInfo } from './page-track-notifier.js';
import { KERNEL_WAIT_TIMEOUT_MS, SharedMutex, WaitTimeoutError, waitWhileEqual } from './sync.js';
import { now } from '../base/clock.js';
import type { Vm } from './vm.js';

const P = PageTrackLayout.words;
const PF = PageTrackLayout.floats;
const N = TrackNotifierLayout.words;
const V = PageTrackVcpuLayout.words;
const VF = PageTrackVcpuLayout.floats;
const WRITABLE = SpteBits.WRITABLE;
const TRACKED = SpteBits.WRITE_TRACKED;

/** A reader the grace period still waits for: wait while `i32[index] === value`. */
export interface PendingReader {
  readonly i32: Int32Array;
  readonly index: number;
  readonly value: number;
  readonly what: string;
}

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
  private readonly notifierLock: SharedMutex;
  private readonly entries: TrackNotifierBlock[] = [];
  private readonly vcpuBlocks: (PageTrackVcpuBlock | null)[];
  private readonly vcpusOffset: number;
  /** This thread's instance of each table entry, valid for `localGen[id]` only. */
  private readonly local: (PageTrackNotifier | null)[] = new Array<PageTrackNotifier | null>(MAX_TRACK_NOTIFIERS).fill(null);
  private readonly localGen = new Int32Array(MAX_TRACK_NOTIFIERS).fill(-1);
  /** Reused for every callback: the write path allocates nothing. */
  private readonly info: TrackWriteInfo = { vcpuIndex: 0, tracked: false };

  constructor(
    private readonly vm: Vm,
    readonly maxVcpus: number,
    buffer?: SharedArrayBuffer,
  ) {
    const layout = pageTrackBufferLayout(maxVcpus);
    this.buffer = buffer ?? new SharedArrayBuffer(layout.bytes);
    this.block = new SharedBlock(PageTrackLayout, this.buffer, 0);
    for (let i = 0; i < MAX_TRACK_NOTIFIERS; i++) {
      this.entries.push(new SharedBlock(TrackNotifierLayout, this.buffer, layout.notifiersOffset + i * TrackNotifierLayout.bytes));
    }
    this.vcpusOffset = layout.vcpusOffset;
    this.vcpuBlocks = new Array<PageTrackVcpuBlock | null>(maxVcpus).fill(null);
    this.notifierLock = new SharedMutex(this.block.i32, P.NOTIFIER_LOCK, 'page-track notifier lock');
  }

  /** This vCPU's SRCU word and statistics. */
  vcpuBlock(index: number): PageTrackVcpuBlock {
    let b = this.vcpuBlocks[index];
    if (b === undefined) throw new KvmError('EINVAL', `no vCPU ${index}`, 'vcpu');
    if (b === null) {
      b = new SharedBlock(PageTrackVcpuLayout, this.buffer, this.vcpusOffset + index * PageTrackVcpuLayout.bytes);
      this.vcpuBlocks[index] = b;
    }
    return b;
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
    if (protectedNow && !this.vm.hasMutant(KernelMutant.TRACK_NO_TLB_FLUSH)) this.vm.flushRemoteTlbs();
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
    if (!Number.isSafeInteger(gfn) || gfn < 0) throw new KvmError('EINVAL', `gfn ${gfn} is not a guest frame number`, 'gfn');
    // gfn_to_memslot in address space 0, as kvm_write_track_{add,remove}_gfn do.
    const slot = this.vm.memslots.findByGfn(0, gfn);
    if (!slot) throw new KvmError('EINVAL', `gfn 0x${gfn.toString(16)} is in no memslot`, 'gfn');
    return slot;
  }

  // ------------------------------------------------------------------------------------------
  // Notifier registration

  /**
   * First step of kvm_page_track_register_notifier: reserve a table entry. Readers ignore it
   * until `activateNotifier`; meanwhile the caller attaches an instance in every thread.
   */
  reserveNotifier(): { id: number; generation: number } {
    return this.notifierLock.with(() => {
      for (let id = 0; id < MAX_TRACK_NOTIFIERS; id++) {
        const w = this.entries[id]!.i32;
        if (Atomics.load(w, N.STATE) !== TrackNotifierState.FREE) continue;
        const generation = Atomics.add(w, N.GENERATION, 1) + 1;
        Atomics.store(w, N.STATE, TrackNotifierState.RESERVED);
        return { id, generation };
      }
      throw new KvmError('ENOMEM', `the emulator's notifier table is full (${MAX_TRACK_NOTIFIERS} notifiers)`, 'notifier');
    });
  }

  /** Give this thread its instance of notifier `id` (done in every thread before activation). */
  attachNotifier(id: number, generation: number, instance: PageTrackNotifier): void {
    this.checkId(id);
    this.local[id] = instance;
    this.localGen[id] = generation;
  }

  /** hlist_add_head_rcu: from now on readers call the notifier. */
  activateNotifier(id: number, generation: number): void {
    this.notifierLock.with(() => {
      const w = this.entry(id);
      if (Atomics.load(w, N.STATE) !== TrackNotifierState.RESERVED || Atomics.load(w, N.GENERATION) !== generation) {
        throw new KvmError('EINVAL', `notifier ${id} (generation ${generation}) is not reserved`, 'notifier');
      }
      Atomics.store(w, N.STATE, TrackNotifierState.ACTIVE);
      Atomics.add(this.block.i32, P.ACTIVE_NOTIFIERS, 1);
      this.block.f64[PF.NOTIFIERS_REGISTERED]! += 1;
    });
  }

  /** Give a reserved entry back (a registration that failed before activation). */
  cancelReservation(id: number, generation: number): void {
    this.notifierLock.with(() => {
      const w = this.entry(id);
      if (Atomics.load(w, N.STATE) === TrackNotifierState.RESERVED && Atomics.load(w, N.GENERATION) === generation) {
        Atomics.store(w, N.STATE, TrackNotifierState.FREE);
      }
    });
    if (this.localGen[id] === generation) this.dropLocal(id);
  }

  /** Register a notifier whose every user is this thread (tests, single-threaded tools). */
  registerNotifier(instance: PageTrackNotifier): number {
    const { id, generation } = this.reserveNotifier();
    this.attachNotifier(id, generation, instance);
    this.activateNotifier(id, generation);
    return id;
  }

  /**
   * kvm_page_track_unregister_notifier: unlink, then wait until no reader can still be inside
   * the notifier (bounded; a wedged reader is a WaitTimeoutError). Blocks this thread; a thread
   * that must not block uses `beginUnregister` + `pendingReader` + `endUnregister` instead
   * (src/userspace/page-track-control.ts).
   */
  unregisterNotifier(id: number): void {
    const t0 = now();
    const snapshot = this.beginUnregister(id);
    let waited = false;
    for (;;) {
      const r = this.pendingReader(snapshot);
      if (r === null) break;
      waited = true;
      if (now() - t0 >= KERNEL_WAIT_TIMEOUT_MS) {
        throw new WaitTimeoutError(`unregister notifier ${id}: ${r.what} never left the notifier list`, KERNEL_WAIT_TIMEOUT_MS);
      }
      waitWhileEqual(r.i32, r.index, r.value, 50);
    }
    this.endUnregister(id, waited, now() - t0);
  }

  /**
   * Unlink `id` (readers that start now will not see it) and snapshot the vCPUs' SRCU words.
   * The grace period is over when `pendingReader(snapshot)` returns null.
   */
  beginUnregister(id: number): Int32Array {
    this.notifierLock.with(() => {
      const w = this.entry(id);
      if (Atomics.load(w, N.STATE) !== TrackNotifierState.ACTIVE) {
        throw new KvmError('EINVAL', `notifier ${id} is not registered`, 'notifier');
      }
      Atomics.store(w, N.STATE, TrackNotifierState.UNREGISTERING);
      Atomics.sub(this.block.i32, P.ACTIVE_NOTIFIERS, 1);
    });
    const n = this.vm.createdVcpus;
    const snapshot = new Int32Array(n);
    for (let i = 0; i < n; i++) snapshot[i] = Atomics.load(this.vcpuBlock(i).i32, V.SRCU_SEQ);
    return snapshot;
  }

  /** A reader the grace period begun with `snapshot` still waits for, or null when it is over. */
  pendingReader(snapshot: Int32Array): PendingReader | null {
    // Mutant: synchronize_srcu forgotten — unregister returns with callbacks still running.
    if (this.vm.hasMutant(KernelMutant.TRACK_NO_GRACE_PERIOD)) return null;
    for (let i = 0; i < snapshot.length; i++) {
      const s = snapshot[i]!;
      const w = this.vcpuBlock(i).i32;
      if ((s & 1) !== 0 && Atomics.load(w, V.SRCU_SEQ) === s) return { i32: w, index: V.SRCU_SEQ, value: s, what: `vCPU ${i}` };
    }
    const readers = Atomics.load(this.block.i32, P.IOCTL_READERS);
    if (readers !== 0) return { i32: this.block.i32, index: P.IOCTL_READERS, value: readers, what: 'a memslot ioctl' };
    return null;
  }

  /** The grace period is over: the entry becomes reusable. */
  endUnregister(id: number, waited: boolean, elapsedMs: number): void {
    this.notifierLock.with(() => {
      const w = this.entry(id);
      Atomics.store(w, N.STATE, TrackNotifierState.FREE);
      const f = this.block.f64;
      f[PF.NOTIFIERS_UNREGISTERED]! += 1;
      f[PF.GRACE_PERIODS]! += 1;
      if (waited) f[PF.GRACE_PERIODS_WAITED]! += 1;
      const ns = elapsedMs * 1e6;
      f[PF.GRACE_WAIT_TOTAL_NS]! += ns;
      if (ns > f[PF.GRACE_WAIT_MAX_NS]!) f[PF.GRACE_WAIT_MAX_NS] = ns;
    });
    this.dropLocal(id);
  }

  /** Forget this thread's instance (other threads drop theirs when the generation moves on). */
  dropLocal(id: number): void {
    this.local[id] = null;
    this.localGen[id] = -1;
  }

  get activeNotifiers(): number {
    return Atomics.load(this.block.i32, P.ACTIVE_NOTIFIERS);
  }

  private entry(id: number): Int32Array {
    this.checkId(id);
    return this.entries[id]!.i32;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_TRACK_NOTIFIERS) throw new KvmError('EINVAL', `no notifier ${id}`, 'notifier');
  }

  // ------------------------------------------------------------------------------------------
  // Events

  /**
   * kvm_page_track_write (the notifier half): after an emulated write, in vCPU `vcpuIndex`'s
   * thread, call every registered notifier inside the SRCU read section.
   */
  notifyWrite(vcpuIndex: number, gpa: number, bytes: Uint8Array, length: number, tracked: boolean): void {
    const vb = this.vcpuBlock(vcpuIndex);
    const vf = vb.f64;
    if (tracked) vf[VF.TRACKED_WRITES]! += 1;
    // hlist_empty: nobody to tell.
    if (Atomics.load(this.block.i32, P.ACTIVE_NOTIFIERS) === 0) return;
    vf[VF.NOTIFIED_WRITES]! += 1;
    const w = vb.i32;
    Atomics.add(w, V.SRCU_SEQ, 1); // odd: inside; must precede every read of the table
    try {
      const info = this.info;
      info.vcpuIndex = vcpuIndex;
      info.tracked = tracked;
      for (let id = 0; id < MAX_TRACK_NOTIFIERS; id++) {
        const n = this.activeLocal(id);
        if (n === null) continue;
        n.trackWrite(gpa, bytes, length, info);
        vf[VF.NOTIFIER_CALLS]! += 1;
      }
    } finally {
      Atomics.add(w, V.SRCU_SEQ, 1);
      Atomics.notify(w, V.SRCU_SEQ);
    }
  }

  /** kvm_page_track_delete_slot: track_remove_region for every notifier, in this thread. */
  notifyRemoveRegion(baseGfn: number, pageCount: number): void {
    this.block.f64[PF.REMOVE_REGION_NOTIFICATIONS]! += 1;
    if (Atomics.load(this.block.i32, P.ACTIVE_NOTIFIERS) === 0) return;
    const w = this.block.i32;
    Atomics.add(w, P.IOCTL_READERS, 1);
    try {
      for (let id = 0; id < MAX_TRACK_NOTIFIERS; id++) this.activeLocal(id)?.trackRemoveRegion(baseGfn, pageCount);
    } finally {
      Atomics.sub(w, P.IOCTL_READERS, 1);
      Atomics.notify(w, P.IOCTL_READERS);
    }
  }

  /**
   * This thread's instance of entry `id` if the entry is ACTIVE. Inside a read section an
   * ACTIVE entry cannot be unregistered and reused, so its generation is stable while we look.
   * An ACTIVE entry without an instance here means a registration skipped this thread: a WARN.
   */
  private activeLocal(id: number): PageTrackNotifier | null {
    const e = this.entries[id]!.i32;
    if (Atomics.load(e, N.STATE) !== TrackNotifierState.ACTIVE) return null;
    const n = this.local[id] ?? null;
    if (n === null || this.localGen[id] !== Atomics.load(e, N.GENERATION)) {
      this.vm.warn();
      return null;
    }
    return n;
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
      graceWaitTotalMs: f[PF.GRACE_WAIT_TOTAL_NS]! / 1e6,
      graceWaitMaxMs: f[PF.GRACE_WAIT_MAX_NS]! / 1e6,
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
