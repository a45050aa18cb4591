/**
 * The page-track notifier list (page_track.c's kvm_page_track_notifier_head): registration,
 * the SRCU-like grace period of unregister, and the two events delivered to every registered
 * notifier.
 *
 * A table in shared memory (TrackNotifierLayout) plays the kernel's hlist; each thread holds its
 * own instance of each registered notifier (page-track-notifier.ts). Write notifications run in
 * the vCPU's thread inside an SRCU-like read section: the vCPU bumps its SRCU_SEQ word to odd
 * before it reads the table and back to even after the last callback. Unregister unlinks the
 * entry first and then waits, for each vCPU whose word was odd, until the word moves. With
 * sequentially consistent Atomics either a reader bumped its word before the unlink — then
 * unregister sees it odd and waits for the whole read section — or it reads the table after the
 * unlink and never calls the notifier. So when unregister returns no callback of that notifier
 * is running and none will start. A vCPU that keeps re-entering cannot starve it: any change
 * of the word ends the wait. Memslot ioctls (remove-region) use a shared reader count instead
 * (IOCTL_READERS). Every wait is bounded.
 */
import { KvmError } from '../abi/errno.js';
import { showArg } from './ioctl-args.js';
import { SharedBlock } from '../abi/layout.js';
import { NS_PER_MS, now } from '../base/clock.js';
import { KernelMutant } from './mutants.js';
import {
  MAX_TRACK_NOTIFIERS,
  type PageTrackBlock,
  PageTrackLayout,
  type PageTrackVcpuBlock,
  PageTrackVcpuLayout,
  type TrackNotifierBlock,
  TrackNotifierLayout,
  TrackNotifierState,
  pageTrackBufferLayout,
} from './page-track-layout.js';
import type { PageTrackNotifier, TrackWriteInfo } from './page-track-node.js';
import { KERNEL_WAIT_TIMEOUT_MS, SharedMutex, WaitTimeoutError, waitWhileEqual } from './sync.js';
import type { VmCore } from './vm-core.js';

const P = PageTrackLayout.words;
const PF = PageTrackLayout.floats;
const N = TrackNotifierLayout.words;
const V = PageTrackVcpuLayout.words;
const VF = PageTrackVcpuLayout.floats;
/** How long unregister sleeps on one reader's word before it looks again (ms). */
const GRACE_WAIT_SLICE_MS = 50;

/** A reader the grace period still waits for: wait while `i32[index] === value`. */
export interface PendingReader {
  readonly i32: Int32Array;
  readonly index: number;
  readonly value: number;
  readonly what: string;
}

export class TrackNotifierList {
  private readonly lock: SharedMutex;
  private readonly entries: TrackNotifierBlock[] = [];
  private readonly vcpuBlocks: (PageTrackVcpuBlock | null)[];
  private readonly vcpusOffset: number;
  /** This thread's instance of each table entry, valid for `localGen[id]` only. */
  private readonly local: (PageTrackNotifier | null)[] = new Array<PageTrackNotifier | null>(MAX_TRACK_NOTIFIERS).fill(null);
  private readonly localGen = new Int32Array(MAX_TRACK_NOTIFIERS).fill(-1);
  /** Reused for every callback: the write path allocates nothing. */
  private readonly info: TrackWriteInfo = { vcpuIndex: 0, tracked: false };

  constructor(
    private readonly vm: VmCore,
    private readonly block: PageTrackBlock,
    maxVcpus: number,
  ) {
    const buffer = block.buffer;
    const layout = pageTrackBufferLayout(maxVcpus);
    for (let i = 0; i < MAX_TRACK_NOTIFIERS; i++) {
      this.entries.push(new SharedBlock(TrackNotifierLayout, buffer, layout.notifiersOffset + i * TrackNotifierLayout.bytes));
    }
    this.vcpusOffset = layout.vcpusOffset;
    this.vcpuBlocks = new Array<PageTrackVcpuBlock | null>(maxVcpus).fill(null);
    this.lock = new SharedMutex(block.i32, P.NOTIFIER_LOCK, 'page-track notifier lock');
  }

  /** This vCPU's SRCU word and statistics. */
  vcpuBlock(index: number): PageTrackVcpuBlock {
    let b = typeof index === 'number' ? this.vcpuBlocks[index] : undefined;
    if (b === undefined) throw new KvmError('EINVAL', `no vCPU ${showArg(index)}`, 'vcpu');
    if (b === null) {
      b = new SharedBlock(PageTrackVcpuLayout, this.block.buffer, this.vcpusOffset + index * PageTrackVcpuLayout.bytes);
      this.vcpuBlocks[index] = b;
    }
    return b;
  }

  get activeNotifiers(): number {
    return Atomics.load(this.block.i32, P.ACTIVE_NOTIFIERS);
  }

  // ------------------------------------------------------------------------------------------
  // Registration

  /**
   * First step of kvm_page_track_register_notifier: reserve a table entry. Readers ignore it
   * until `activateNotifier`; meanwhile the caller attaches an instance in every thread.
   */
  reserveNotifier(): { id: number; generation: number } {
    return this.lock.with(() => {
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
    checkId(id);
    checkNotifier(instance);
    this.local[id] = instance;
    this.localGen[id] = generation;
  }

  /** hlist_add_head_rcu: from now on readers call the notifier. */
  activateNotifier(id: number, generation: number): void {
    this.lock.with(() => {
      const w = this.entry(id);
      if (Atomics.load(w, N.STATE) !== TrackNotifierState.RESERVED || Atomics.load(w, N.GENERATION) !== generation) {
        throw new KvmError('EINVAL', `notifier ${id} (generation ${showArg(generation)}) is not reserved`, 'notifier');
      }
      Atomics.store(w, N.STATE, TrackNotifierState.ACTIVE);
      Atomics.add(this.block.i32, P.ACTIVE_NOTIFIERS, 1);
      this.block.f64[PF.NOTIFIERS_REGISTERED]! += 1;
    });
  }

  /** Give a reserved entry back (a registration that failed before activation). */
  cancelReservation(id: number, generation: number): void {
    this.lock.with(() => {
      const w = this.entry(id);
      if (Atomics.load(w, N.STATE) === TrackNotifierState.RESERVED && Atomics.load(w, N.GENERATION) === generation) {
        Atomics.store(w, N.STATE, TrackNotifierState.FREE);
      }
    });
    if (this.localGen[id] === generation) this.dropLocal(id);
  }

  /** Register a notifier whose every user is this thread (tests, single-threaded tools). */
  registerNotifier(instance: PageTrackNotifier): number {
    // Checked before the reservation: a node the vCPUs could not call must not take a slot.
    checkNotifier(instance);
    const { id, generation } = this.reserveNotifier();
    this.attachNotifier(id, generation, instance);
    this.activateNotifier(id, generation);
    return id;
  }

  // ------------------------------------------------------------------------------------------
  // Unregistration and its grace period

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
    for (let r = this.pendingReader(snapshot); r !== null; r = this.pendingReader(snapshot)) {
      waited = true;
      if (now() - t0 >= KERNEL_WAIT_TIMEOUT_MS) {
        throw new WaitTimeoutError(`unregister notifier ${id}: ${r.what} never left the notifier list`, KERNEL_WAIT_TIMEOUT_MS);
      }
      waitWhileEqual(r.i32, r.index, r.value, GRACE_WAIT_SLICE_MS);
    }
    this.endUnregister(id, waited, now() - t0);
  }

  /**
   * Unlink `id` (readers that start now will not see it) and snapshot the vCPUs' SRCU words.
   * The grace period is over when `pendingReader(snapshot)` returns null.
   */
  beginUnregister(id: number): Int32Array {
    this.lock.with(() => {
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
    this.lock.with(() => {
      const w = this.entry(id);
      Atomics.store(w, N.STATE, TrackNotifierState.FREE);
      const f = this.block.f64;
      f[PF.NOTIFIERS_UNREGISTERED]! += 1;
      f[PF.GRACE_PERIODS]! += 1;
      if (waited) f[PF.GRACE_PERIODS_WAITED]! += 1;
      const ns = elapsedMs * NS_PER_MS;
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

  private entry(id: number): Int32Array {
    checkId(id);
    return this.entries[id]!.i32;
  }
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= MAX_TRACK_NOTIFIERS) throw new KvmError('EINVAL', `no notifier ${showArg(id)}`, 'notifier');
}

/** A notifier node has both callbacks (a vCPU thread calls them; a bad node would crash it there). */
function checkNotifier(instance: PageTrackNotifier): void {
  const ok =
    instance !== null &&
    typeof instance === 'object' &&
    typeof instance.trackWrite === 'function' &&
    typeof instance.trackRemoveRegion === 'function';
  if (!ok) throw new KvmError('EINVAL', 'a notifier needs trackWrite and trackRemoveRegion functions', 'notifier');
}
