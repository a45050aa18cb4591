/**
 * The VM: capabilities, vCPU creation, memslots, KVM_RESET_DIRTY_RINGS and the remote TLB
 * flush. Ioctls run in the caller's thread; the state they touch is in shared memory, so a VM
 * created in one thread can be attached in any other (`Vm.attach`) and both see one VM.
 */
import {
  DIRTY_GFN_BYTES,
  KVM_ADDRESS_SPACE_NUM,
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_DIRTY_RING_MAX_BYTES,
  KVM_DIRTY_RING_RSVD_ENTRIES,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_MAX_NR_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  PAGE_SIZE,
} from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { MEMSLOT_TABLE_ENTRIES, MemslotLayout, MemslotState, SpteBits } from './memslot-layout.js';
import { type RingViews, ringViews } from '../abi/dirty-gfn.js';
import { SharedBlock } from '../abi/layout.js';
import { type VcpuBlock, VcpuLayout, VcpuMode, VcpuRequest } from './vcpu-layout.js';
import { type VmBlock, VmLayout } from './vm-layout.js';
import { assertLittleEndian } from '../base/assert.js';
import { bitmapWords, clearAndProtect, copyLive, exchangeAndProtect, setDirtyBit } from './dirty-bitmap.js';
import { DirtyRing, ResetBatch, highestBit, validateRingBytes } from './dirty-ring.js';
import { type Memslot, MemslotTable, type SlotBuffers, allocateSlotBuffers, bitmapBytes } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { PageTrack } from './page-track.js';
import { Step, stepHook } from './step-hook.js';
import { KERNEL_WAIT_TIMEOUT_MS, SharedMutex, WaitTimeoutError, waitWhileEqual } from './sync.js';
import { now } from '../base/clock.js';

/**
 * mmu_lock hold times of reset batches are measured on one batch in this many (a power of two):
 * batches are many and short, and two clock reads would cost about as much as the batch.
 */
const RESET_HOLD_SAMPLE = 8;

/** What a write with no running vCPU did to the dirty log (Vm.markPageDirtyNoVcpu). */
export const NoVcpuMark = {
  /** The slot does not log dirty pages (or has no bitmap yet): nothing to record. */
  NOT_LOGGING: 0,
  LOGGED: 1,
  /** A ring VM without ring-with-bitmap: the kernel WARNs and the page is never reported. */
  LOST: 2,
} as const;
export type NoVcpuMark = (typeof NoVcpuMark)[keyof typeof NoVcpuMark];

/** The emulator's vCPU limit (KVM's x86 limit is far higher; threads are the cost here). */
export const MAX_VCPUS = 256;

/** Every SharedArrayBuffer of a VM: plain data, posted once to each thread that attaches. */
export interface VmBuffers {
  readonly vm: SharedArrayBuffer;
  readonly memslots: SharedArrayBuffer;
  readonly vcpus: readonly SharedArrayBuffer[];
  readonly rings: readonly (SharedArrayBuffer | null)[];
  readonly slots: readonly (SlotBuffers | null)[];
  /** Page write-tracking state: notifier table, SRCU words, statistics (src/kernel/page-track.ts). */
  readonly pageTrack: SharedArrayBuffer;
}

/** KVM_SET_USER_MEMORY_REGION's argument, plus the backing memory (userspace_addr). */
export interface MemoryRegion {
  /** (as_id << 16) | id. */
  readonly slot: number;
  readonly flags: number;
  readonly guestPhysAddr: number;
  /** Bytes; 0 deletes the slot. */
  readonly memorySize: number;
  /** Backing memory; allocated when omitted. Must hold at least memorySize bytes. */
  readonly memory?: SharedArrayBuffer;
}

export interface VmOptions {
  /** Mutant bits (src/kernel/mutants.ts). */
  readonly mutants?: number;
  /**
   * Model arm64's KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP (cap 225). x86 does not offer it; the
   * emulator offers it only when asked, for writes made without a running vCPU.
   */
  readonly offerRingWithBitmap?: boolean;
}

const VM_WORDS = VmLayout.words;
const VM_FLOATS = VmLayout.floats;
const V = VcpuLayout.words;

export class Vm {
  readonly block: VmBlock;
  readonly memslots: MemslotTable;
  readonly mmuLock: SharedMutex;
  readonly slotsLock: SharedMutex;
  /** Page write-tracking (issue 4): gfn_track counts and the page-track notifiers. */
  readonly pageTrack: PageTrack;
  private readonly vcpuBlocks: VcpuBlock[] = [];
  private readonly ringBuffers: (SharedArrayBuffer | null)[] = [];
  private readonly rings: (DirtyRing | null)[] = [];
  private readonly resetBatch = new ResetBatch();
  /** The slot the reset looked up last (valid while slots_lock is held, see resetDirtyGfn). */
  private resetSlotEnc = -1;
  private resetSlot: Memslot | null = null;
  private readonly resetSink = (slot: number, offLo: number, offHi: number, maskLo: number, maskHi: number): void =>
    this.resetDirtyGfn(slot, offLo, offHi, maskLo, maskHi);
  private readonly options: VmOptions;

  private constructor(
    vmBuffer: SharedArrayBuffer,
    memslotBuffer: SharedArrayBuffer,
    options: VmOptions,
    pageTrackBuffer?: SharedArrayBuffer,
  ) {
    assertLittleEndian();
    this.options = options;
    this.block = new SharedBlock(VmLayout, vmBuffer);
    this.memslots = new MemslotTable(memslotBuffer);
    this.mmuLock = new SharedMutex(this.block.i32, VM_WORDS.MMU_LOCK, 'mmu_lock', {
      f64: this.block.f64,
      acquires: VM_FLOATS.MMU_LOCK_ACQUIRES,
      holdTotalNs: VM_FLOATS.MMU_LOCK_HOLD_TOTAL_NS,
      holdMaxNs: VM_FLOATS.MMU_LOCK_HOLD_MAX_NS,
    });
    this.slotsLock = new SharedMutex(this.block.i32, VM_WORDS.SLOTS_LOCK, 'slots_lock');
    this.pageTrack = new PageTrack(this, MAX_VCPUS, pageTrackBuffer);
  }

  /** KVM_CREATE_VM. */
  static create(options: VmOptions = {}): Vm {
    const vm = new Vm(
      new SharedArrayBuffer(VmLayout.bytes),
      new SharedArrayBuffer(MemslotLayout.bytes * MEMSLOT_TABLE_ENTRIES),
      options,
    );
    Atomics.store(vm.block.i32, VM_WORDS.MUTANTS, options.mutants ?? 0);
    return vm;
  }

  /** Attach to a VM created in another thread. */
  static attach(buffers: VmBuffers, options: VmOptions = {}): Vm {
    const vm = new Vm(buffers.vm, buffers.memslots, options, buffers.pageTrack);
    buffers.slots.forEach((b, i) => {
      if (b) vm.memslots.attach(i, b);
    });
    buffers.vcpus.forEach((b, i) => vm.attachVcpu(i, b, buffers.rings[i] ?? null));
    return vm;
  }

  buffers(): VmBuffers {
    return {
      vm: this.block.buffer,
      memslots: this.memslots.buffer,
      vcpus: this.vcpuBlocks.map((b) => b.buffer),
      rings: this.ringBuffers.slice(),
      slots: this.memslots.allBuffers(),
      pageTrack: this.pageTrack.buffer,
    };
  }

  get mutants(): number {
    return Atomics.load(this.block.i32, VM_WORDS.MUTANTS);
  }

  hasMutant(bit: number): boolean {
    return (this.mutants & bit) !== 0;
  }

  /** Ring size in bytes, 0 without a ring. */
  get ringBytes(): number {
    return Atomics.load(this.block.i32, VM_WORDS.RING_BYTES) >>> 0;
  }

  get ringEntries(): number {
    return this.ringBytes / DIRTY_GFN_BYTES;
  }

  get manualProtect(): number {
    return Atomics.load(this.block.i32, VM_WORDS.MANUAL_PROTECT);
  }

  get ringWithBitmap(): boolean {
    return Atomics.load(this.block.i32, VM_WORDS.RING_WITH_BITMAP) !== 0;
  }

  get createdVcpus(): number {
    return Atomics.load(this.block.i32, VM_WORDS.CREATED_VCPUS);
  }

  /** kvm_use_dirty_bitmap(): bitmaps exist without a ring, or with ring-with-bitmap. */
  get usesDirtyBitmap(): boolean {
    return this.ringBytes === 0 || this.ringWithBitmap;
  }

  // ------------------------------------------------------------------------------------------
  // Capabilities

  /** KVM_CHECK_EXTENSION on the VM fd (the x86 answers). */
  checkExtension(cap: number): number {
    switch (cap) {
      case KVM_CAP_DIRTY_LOG_RING:
      case KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
        return KVM_DIRTY_RING_MAX_BYTES;
      case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
        return KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
      case KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP:
        return this.options.offerRingWithBitmap ? 1 : 0;
      default:
        return 0;
    }
  }

  /**
   * KVM_ENABLE_CAP. `args0` is the u64 args[0]; `flags` is cap.flags (ignored by the ring
   * caps, as observed; must be 0 for manual protect).
   */
  enableCap(cap: number, args0: number | bigint, flags = 0): void {
    switch (cap) {
      case KVM_CAP_DIRTY_LOG_RING:
      case KVM_CAP_DIRTY_LOG_RING_ACQ_REL: {
        const size = validateRingBytes(args0, KVM_DIRTY_RING_RSVD_ENTRIES);
        // "We only allow it to set once", then, under kvm->lock, "only before any vCPU".
        if (this.ringBytes !== 0) throw new KvmError('EINVAL', 'the dirty ring is already enabled', 'cap');
        this.slotsLock.with(() => {
          if (this.createdVcpus > 0) {
            throw new KvmError('EINVAL', 'the dirty ring must be enabled before the first vCPU is created', 'cap');
          }
          Atomics.store(this.block.i32, VM_WORDS.RING_ACQ_REL, cap === KVM_CAP_DIRTY_LOG_RING_ACQ_REL ? 1 : 0);
          Atomics.store(this.block.i32, VM_WORDS.RING_BYTES, size | 0);
        });
        return;
      }
      case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: {
        const allowed = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
        const value = typeof args0 === 'bigint' ? args0 : BigInt(args0);
        if (flags !== 0) throw new KvmError('EINVAL', 'cap.flags must be 0', 'flags');
        if ((value & ~BigInt(allowed)) !== 0n) throw new KvmError('EINVAL', `unknown manual-protect bits in ${value}`, 'args[0]');
        const bits = Number(value);
        if (bits === KVM_DIRTY_LOG_INITIALLY_SET) {
          throw new KvmError('EINVAL', 'INITIALLY_SET needs MANUAL_PROTECT_ENABLE', 'args[0]');
        }
        Atomics.store(this.block.i32, VM_WORDS.MANUAL_PROTECT, bits);
        return;
      }
      case KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP: {
        if (!this.options.offerRingWithBitmap) throw new KvmError('EINVAL', 'capability not offered on x86', 'cap');
        if (this.ringBytes === 0) throw new KvmError('EINVAL', 'ring-with-bitmap needs a dirty ring', 'cap');
        if (flags !== 0) throw new KvmError('EINVAL', 'cap.flags must be 0', 'flags');
        this.slotsLock.with(() => {
          if (this.memslots.active().length > 0) {
            throw new KvmError('EINVAL', 'ring-with-bitmap must be enabled before any memslot exists', 'cap');
          }
          Atomics.store(this.block.i32, VM_WORDS.RING_WITH_BITMAP, 1);
        });
        return;
      }
      default:
        throw new KvmError('EINVAL', `capability ${cap} cannot be enabled`, 'cap');
    }
  }

  // ------------------------------------------------------------------------------------------
  // vCPUs

  /** KVM_CREATE_VCPU: returns the new vCPU's index. Its ring (if any) starts zeroed. */
  createVcpu(): number {
    return this.slotsLock.with(() => {
      const index = this.createdVcpus;
      if (index >= MAX_VCPUS) throw new KvmError('EINVAL', `at most ${MAX_VCPUS} vCPUs`, 'vcpu');
      const block = new SharedBlock(VcpuLayout);
      Atomics.store(block.i32, V.VCPU_ID, index);
      const ring = this.ringBytes > 0 ? new SharedArrayBuffer(this.ringBytes) : null;
      this.attachVcpu(index, block.buffer, ring);
      Atomics.store(this.block.i32, VM_WORDS.CREATED_VCPUS, index + 1);
      return index;
    });
  }

  /** Make a vCPU created elsewhere (or just now) known to this thread. */
  attachVcpu(index: number, block: SharedArrayBuffer, ring: SharedArrayBuffer | null): void {
    const vb = new SharedBlock(VcpuLayout, block);
    this.vcpuBlocks[index] = vb;
    this.ringBuffers[index] = ring;
    this.rings[index] = ring
      ? new DirtyRing(ring, vb, {
          onOverflow: () => this.warn(),
          flagsBeforePayload: this.hasMutant(KernelMutant.FLAGS_BEFORE_PAYLOAD),
          lateSoftFull: this.hasMutant(KernelMutant.LATE_SOFT_FULL),
        })
      : null;
  }

  vcpuBlock(index: number): VcpuBlock {
    const b = this.vcpuBlocks[index];
    if (!b) throw new KvmError('EINVAL', `no vCPU ${index}`, 'vcpu');
    return b;
  }

  ring(index: number): DirtyRing | null {
    return this.rings[index] ?? null;
  }

  get vcpuCount(): number {
    return this.vcpuBlocks.length;
  }

  /**
   * mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET: the ring, for userspace. An executable
   * mapping is refused with EPERM and a private one with EINVAL, in that order.
   * Fidelity (issue 7, observed on 6.18, scenario ring-mmap): PROT_EXEC never reaches KVM's own
   * EINVAL check — do_mmap()'s noexec check on the vCPU fd's mount says EPERM first, also for
   * MAP_PRIVATE | PROT_EXEC. A private mapping without exec reaches kvm_vcpu_mmap: EINVAL.
   */
  mmapRing(index: number, prot: { shared?: boolean; exec?: boolean } = {}): RingViews {
    if (prot.exec === true) throw new KvmError('EPERM', 'the ring must not be mapped PROT_EXEC', 'prot');
    if (prot.shared === false) throw new KvmError('EINVAL', 'the ring must be mapped MAP_SHARED', 'flags');
    const buf = this.ringBuffers[index];
    if (!buf) throw new KvmError('EINVAL', `vCPU ${index} has no dirty ring`, 'offset');
    return ringViews(buf);
  }

  // ------------------------------------------------------------------------------------------
  // Memslots

  /**
   * KVM_SET_USER_MEMORY_REGION: create, delete (memorySize 0), move, or change flags of a slot.
   * Everything is validated before anything changes.
   */
  setUserMemoryRegion(region: MemoryRegion): void {
    const asId = region.slot >>> 16;
    const id = region.slot & 0xffff;
    const validFlags = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
    if ((region.flags & ~validFlags) !== 0) throw new KvmError('EINVAL', `unknown memslot flags ${region.flags}`, 'flags');
    if (asId >= KVM_ADDRESS_SPACE_NUM) throw new KvmError('EINVAL', `as_id ${asId} out of range`, 'slot');
    if (id >= KVM_USER_MEM_SLOTS) throw new KvmError('EINVAL', `slot id ${id} out of range`, 'slot');
    if (!Number.isSafeInteger(region.memorySize) || region.memorySize < 0 || region.memorySize % PAGE_SIZE !== 0) {
      throw new KvmError('EINVAL', `memory_size ${region.memorySize} is not a multiple of ${PAGE_SIZE}`, 'memory_size');
    }
    if (!Number.isSafeInteger(region.guestPhysAddr) || region.guestPhysAddr < 0 || region.guestPhysAddr % PAGE_SIZE !== 0) {
      throw new KvmError('EINVAL', `guest_phys_addr ${region.guestPhysAddr} is not page aligned`, 'guest_phys_addr');
    }
    const pageCount = region.memorySize / PAGE_SIZE;
    if (pageCount > KVM_MEM_MAX_NR_PAGES) throw new KvmError('EINVAL', `more than 2^31-1 pages`, 'memory_size');
    const baseGfn = region.guestPhysAddr / PAGE_SIZE;

    this.slotsLock.with(() => {
      const index = this.memslots.indexOfId(asId, id);
      if (region.memorySize === 0) {
        if (index < 0) throw new KvmError('EINVAL', `slot ${id} does not exist`, 'slot');
        this.deleteSlot(index);
        return;
      }
      if (index < 0) {
        this.createSlot(asId, id, region, pageCount, baseGfn);
        return;
      }
      const old = this.memslots.at(index)!;
      if (old.pageCount !== pageCount) throw new KvmError('EINVAL', 'a memslot cannot be resized', 'memory_size');
      if (((old.flags ^ region.flags) & KVM_MEM_READONLY) !== 0) {
        throw new KvmError('EINVAL', 'READONLY cannot be toggled on an existing memslot', 'flags');
      }
      if (old.baseGfn !== baseGfn) {
        this.checkOverlap(asId, baseGfn, pageCount, index);
        this.moveSlot(index, baseGfn);
      }
      this.changeFlags(index, region.flags);
    });
  }

  private checkOverlap(asId: number, baseGfn: number, pageCount: number, ignoreIndex: number): void {
    for (const s of this.memslots.active()) {
      if (s.tableIndex === ignoreIndex || s.asId !== asId) continue;
      if (baseGfn < s.baseGfn + s.pageCount && s.baseGfn < baseGfn + pageCount) {
        throw new KvmError('EEXIST', `gfn range overlaps memslot ${s.id}`, 'guest_phys_addr');
      }
    }
  }

  private createSlot(asId: number, id: number, region: MemoryRegion, pageCount: number, baseGfn: number): void {
    this.checkOverlap(asId, baseGfn, pageCount, -1);
    const index = this.memslots.firstFreeIndex();
    if (index < 0) throw new KvmError('ENOSPC', 'the emulator memslot table is full', 'slot');
    if (region.memory && region.memory.byteLength < region.memorySize) {
      throw new KvmError('EFAULT', 'backing memory is smaller than memory_size', 'userspace_addr');
    }
    const fresh = allocateSlotBuffers(pageCount, true);
    const buffers: SlotBuffers = region.memory ? { ...fresh, memory: region.memory } : fresh;
    this.memslots.attach(index, buffers);
    const e = this.memslots.entry(index).i32;
    const W = MemslotLayout.words;
    Atomics.store(e, W.AS_ID, asId);
    Atomics.store(e, W.ID, id);
    Atomics.store(e, W.NPAGES, pageCount);
    Atomics.store(e, W.BASE_GFN_LO, baseGfn % 2 ** 32 | 0);
    Atomics.store(e, W.BASE_GFN_HI, Math.floor(baseGfn / 2 ** 32) | 0);
    Atomics.store(e, W.FLAGS, 0);
    Atomics.store(e, W.HAS_BITMAP, 0);
    Atomics.add(e, W.GENERATION, 1);
    // Publish last: a thread that sees ACTIVE sees the fields above.
    Atomics.store(e, W.STATE, MemslotState.ACTIVE);
    this.bumpMemslotsGeneration();
    // New SPTEs are not present (0): the first write faults. Logging starts like a flags change.
    this.changeFlags(index, region.flags, true);
  }

  private deleteSlot(index: number): void {
    const old = this.memslots.at(index)!;
    const e = this.memslots.entry(index).i32;
    Atomics.store(e, MemslotLayout.words.STATE, MemslotState.FREE);
    Atomics.store(e, MemslotLayout.words.HAS_BITMAP, 0);
    Atomics.add(e, MemslotLayout.words.GENERATION, 1);
    this.bumpMemslotsGeneration();
    // Like synchronize_srcu + zap: no vCPU may still use the old slot when this returns.
    this.requestAllAndWait(VcpuRequest.MEMSLOTS_UPDATED | VcpuRequest.TLB_FLUSH);
    // Page write-tracking: kvm_arch_flush_shadow_memslot tells every notifier (track_remove_region).
    this.pageTrack.forgetSlot(old);
    this.pageTrack.notifyRemoveRegion(old.baseGfn, old.pageCount);
  }

  private moveSlot(index: number, baseGfn: number): void {
    const slot = this.memslots.at(index)!;
    // Page write-tracking: a move flushes the old slot like a delete (track_remove_region at
    // the old base) and the moved slot starts with fresh counts, as its metadata is reallocated.
    this.pageTrack.notifyRemoveRegion(slot.baseGfn, slot.pageCount);
    this.pageTrack.clearSlotTracking(slot);
    this.mmuLock.with(() => slot.writeProtectAll());
    const e = this.memslots.entry(index).i32;
    Atomics.store(e, MemslotLayout.words.BASE_GFN_LO, baseGfn % 2 ** 32 | 0);
    Atomics.store(e, MemslotLayout.words.BASE_GFN_HI, Math.floor(baseGfn / 2 ** 32) | 0);
    Atomics.add(e, MemslotLayout.words.GENERATION, 1);
    this.bumpMemslotsGeneration();
    this.requestAllAndWait(VcpuRequest.MEMSLOTS_UPDATED | VcpuRequest.TLB_FLUSH);
  }

  /**
   * Apply new flags. Turning LOG_DIRTY_PAGES on allocates the bitmap (when bitmaps are in use:
   * zeroed, or all ones under INITIALLY_SET) and write-protects the whole slot, except under
   * INITIALLY_SET where nothing is protected until CLEAR (with a ring: until a reset names the
   * page). The flag is published before the write-protect: a vCPU that made a page writable and
   * then read "logging off" did so before the protect below, which therefore wins.
   */
  private changeFlags(index: number, flags: number, created = false): void {
    const slot = this.memslots.at(index)!;
    const e = this.memslots.entry(index).i32;
    const W = MemslotLayout.words;
    const oldFlags = created ? 0 : Atomics.load(e, W.FLAGS);
    const logOn = (flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    const wasOn = (oldFlags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    if (logOn && !wasOn) {
      const initiallySet = (this.manualProtect & KVM_DIRTY_LOG_INITIALLY_SET) !== 0;
      if (this.usesDirtyBitmap) {
        this.initBitmap(slot, initiallySet);
        Atomics.store(e, W.HAS_BITMAP, 1);
      }
      Atomics.store(e, W.FLAGS, flags);
      // x86 kvm_mmu_slot_apply_flags skips the write-protect under INITIALLY_SET whether or not
      // the VM logs by ring: with a ring, pages made writable while logging was off are then
      // never logged (the hazard that keeps QEMU from enabling cap 168 with a ring). Fidelity,
      // issue 7: the emulator used to protect when a ring was in use (scenario
      // fault-path-ring-initially-set, from the kernel source; not observable on an emulating host).
      if (!initiallySet) {
        this.mmuLock.with(() => {
          const n = slot.writeProtectAll();
          this.block.f64[VM_FLOATS.PAGES_REPROTECTED]! += n;
        });
        this.flushRemoteTlbs();
      }
    } else {
      Atomics.store(e, W.FLAGS, flags);
      if (!logOn && wasOn) Atomics.store(e, W.HAS_BITMAP, 0);
    }
    this.bumpMemslotsGeneration();
  }

  /** A fresh bitmap: zeroed, or every page bit set (padding bits stay 0) under INITIALLY_SET. */
  private initBitmap(slot: Memslot, allSet: boolean): void {
    const bm = slot.bitmap!;
    const snap = slot.bitmapSnapshot!;
    snap.fill(0);
    if (!allSet) {
      for (let i = 0; i < bm.length; i++) Atomics.store(bm, i, 0);
      return;
    }
    const full = slot.pageCount >>> 5;
    for (let i = 0; i < bm.length; i++) Atomics.store(bm, i, i < full ? -1 : 0);
    const rest = slot.pageCount & 31;
    if (rest !== 0) Atomics.store(bm, full, ((1 << rest) - 1) | 0);
  }

  private bumpMemslotsGeneration(): void {
    Atomics.add(this.block.i32, VM_WORDS.MEMSLOTS_GEN, 1);
  }

  // ------------------------------------------------------------------------------------------
  // KVM_RESET_DIRTY_RINGS

  /**
   * Walk every vCPU's ring in index order, consuming entries userspace marked RESET and
   * re-protecting the pages they name; one VM-wide TLB flush at the end if anything was
   * consumed. Returns the number of entries consumed over all rings, bad ones included.
   * `signalPending` models a pending signal: the walk stops early with a partial count.
   */
  resetDirtyRings(signalPending?: () => boolean): number {
    if (this.ringBytes === 0) throw new KvmError('EINVAL', 'the VM has no dirty ring', 'vm');
    let cleared = 0;
    this.slotsLock.lock();
    try {
      this.resetSlotEnc = -1;
      this.resetSlot = null;
      const n = this.createdVcpus;
      for (let i = 0; i < n; i++) {
        const ring = this.rings[i];
        if (!ring) continue;
        cleared += ring.resetWalk(this.resetBatch, this.resetSink, cleared, signalPending);
        if (signalPending && signalPending()) break;
      }
    } finally {
      this.slotsLock.unlock();
    }
    const f = this.block.f64;
    f[VM_FLOATS.RESET_CALLS]! += 1;
    f[VM_FLOATS.ENTRIES_RESET]! += cleared;
    // Re-protection is complete only once no vCPU can still store through a stale TLB entry.
    if (cleared > 0 && !this.hasMutant(KernelMutant.NO_TLB_FLUSH)) this.flushRemoteTlbs();
    return cleared;
  }

  /**
   * kvm_reset_dirty_gfn: re-arm logging for `offset + k` for each bit k of the mask, unless the
   * batch names no valid page. Invalid batches are skipped silently (the entries still count).
   * The offset check `offset < npages` stands on its own (577a8d3bae05): `offset + fls(mask)`
   * is u64 arithmetic and wraps for offsets near 2^64.
   */
  private resetDirtyGfn(slotEnc: number, offLo: number, offHi: number, maskLo: number, maskHi: number): void {
    if (maskLo === 0 && maskHi === 0) return;
    const f = this.block.f64;
    const asId = slotEnc >>> 16;
    const id = slotEnc & 0xffff;
    if (asId >= KVM_ADDRESS_SPACE_NUM || id >= KVM_USER_MEM_SLOTS) {
      f[VM_FLOATS.RESET_BATCHES_SKIPPED]! += 1;
      return;
    }
    // slots_lock is held for the whole reset, so a slot looked up once stays valid for it.
    if (slotEnc !== this.resetSlotEnc) {
      this.resetSlotEnc = slotEnc;
      this.resetSlot = this.memslots.findById(asId, id);
    }
    const slot = this.resetSlot;
    const npages = slot === null ? 0 : slot.pageCount;
    const fls = highestBit(maskLo, maskHi);
    // offset + fls as u64 (wrapping), compared with npages.
    const sumLo = offLo + fls;
    const sumHi = (offHi + (sumLo >= 2 ** 32 ? 1 : 0)) >>> 0;
    if (
      slot === null ||
      (!this.hasMutant(KernelMutant.RESET_WRAP_CHECK) && (offHi !== 0 || offLo >= npages)) ||
      sumHi !== 0 ||
      sumLo % 2 ** 32 >= npages
    ) {
      f[VM_FLOATS.RESET_BATCHES_SKIPPED]! += 1;
      return;
    }
    if (stepHook.active) stepHook.at(Step.RESET_REPROTECT, offLo, maskLo);
    this.mmuLock.lock(KERNEL_WAIT_TIMEOUT_MS, RESET_HOLD_SAMPLE);
    let reprotected = 0;
    try {
      for (let half = 0; half < 2; half++) {
        let bits = half === 0 ? maskLo >>> 0 : maskHi >>> 0;
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits);
          bits = (bits & ~(1 << b)) >>> 0;
          // Page index as u64: only the wrapped check can let offHi != 0 through, and then the
          // kernel would index the rmap out of bounds: record that as a kernel bug.
          const pageLo = offLo + half * 32 + b;
          const pageHi = offHi + (pageLo >= 2 ** 32 ? 1 : 0);
          if (pageHi % 2 ** 32 !== 0 || pageLo % 2 ** 32 >= npages) {
            f[VM_FLOATS.KERNEL_BUGS]! += 1;
            continue;
          }
          Atomics.and(slot.spte, pageLo % 2 ** 32, ~SpteBits.WRITABLE);
          reprotected++;
        }
      }
    } finally {
      this.mmuLock.unlock();
      this.accountHold(VM_FLOATS.MMU_HOLD_RESET_TOTAL_NS, VM_FLOATS.MMU_HOLD_RESET_MAX_NS);
    }
    f[VM_FLOATS.PAGES_REPROTECTED]! += reprotected;
  }

  /**
   * Charge the last mmu_lock hold to one ioctl kind, on the same terms as the lock's own
   * statistics (a sampled hold counts its scaled share, an unsampled one nothing), so that the
   * per-kind totals add up to at most the lock's total.
   */
  private accountHold(totalIndex: number, maxIndex: number): void {
    const f = this.block.f64;
    const lock = this.mmuLock;
    f[totalIndex]! += lock.lastHoldNs;
    if (lock.lastHoldMeasuredNs > f[maxIndex]!) f[maxIndex] = lock.lastHoldMeasuredNs;
  }

  // ------------------------------------------------------------------------------------------
  // Bitmap logging: KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, writes with no running vCPU

  /** The slot checks GET and CLEAR share, in the kernel's order (ENXIO, EINVAL, ENOENT). */
  private bitmapSlot(slotEnc: number, firstPage?: number): Memslot {
    if (!this.usesDirtyBitmap) throw new KvmError('ENXIO', 'the VM logs through dirty rings, not bitmaps', 'slot');
    const asId = slotEnc >>> 16;
    const id = slotEnc & 0xffff;
    if (asId >= KVM_ADDRESS_SPACE_NUM) throw new KvmError('EINVAL', `as_id ${asId} out of range`, 'slot');
    if (id >= KVM_USER_MEM_SLOTS) throw new KvmError('EINVAL', `slot id ${id} out of range`, 'slot');
    // CLEAR checks alignment before it looks the slot up.
    if (firstPage !== undefined && firstPage % 64 !== 0 && !this.hasMutant(KernelMutant.CLEAR_UNALIGNED)) {
      throw new KvmError('EINVAL', `first_page ${firstPage} is not a multiple of 64`, 'first_page');
    }
    const slot = this.memslots.findById(asId, id);
    if (!slot || !slot.hasBitmap || !slot.bitmap) {
      throw new KvmError('ENOENT', slot ? `slot ${id} does not log dirty pages` : `slot ${id} does not exist`, 'slot');
    }
    return slot;
  }

  /**
   * KVM_GET_DIRTY_LOG into `out` (u32 words, bit n = page n, ALIGN(npages, 64) bits).
   * Legacy (manual protect off): under mmu_lock exchange each non-zero word with 0 and
   * write-protect those pages, flush TLBs if anything was taken, then copy the snapshot out —
   * overwriting `out`. A bad buffer (null or too short) is EFAULT, and in legacy mode the bits
   * are already gone by then, as in the kernel.
   * Manual protect: copy the live bitmap; nothing is cleared or protected.
   */
  getDirtyLog(slotEnc: number, out: Uint32Array | null): void {
    this.slotsLock.lock();
    try {
      const slot = this.bitmapSlot(slotEnc);
      const words = bitmapWords(slot.pageCount);
      const bad = out === null || out.length < words;
      this.block.f64[VM_FLOATS.GET_CALLS]! += 1;
      if ((this.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) {
        if (bad) throw new KvmError('EFAULT', 'bad dirty_bitmap buffer', 'dirty_bitmap');
        copyLive(slot, out);
        return;
      }
      // The kernel exchanges into the second half of its bitmap allocation and then copies that
      // to the user; with a good buffer the copy is not observable, so exchange straight into it.
      // A bad buffer still consumes the bits (into the slot's own second half), as in the kernel.
      const snapshot = bad ? slot.bitmapSnapshot! : out;
      let reprotected = -1;
      this.mmuLock.lock();
      try {
        reprotected = exchangeAndProtect(slot, snapshot, !this.hasMutant(KernelMutant.LEGACY_GET_NO_PROTECT));
      } finally {
        this.mmuLock.unlock();
        this.accountHold(VM_FLOATS.MMU_HOLD_GET_TOTAL_NS, VM_FLOATS.MMU_HOLD_GET_MAX_NS);
      }
      if (reprotected >= 0) {
        this.block.f64[VM_FLOATS.PAGES_REPROTECTED]! += reprotected;
        this.flushRemoteTlbs();
      }
      if (bad) throw new KvmError('EFAULT', 'bad dirty_bitmap buffer (the dirty bits were already consumed)', 'dirty_bitmap');
    } finally {
      this.slotsLock.unlock();
    }
  }

  /**
   * KVM_CLEAR_DIRTY_LOG: clear the bits of `mask` (bit i = page firstPage + i) and
   * write-protect only the pages whose bits were actually set. Checks, in the kernel's order:
   * ENXIO (ring without bitmap), EINVAL (as_id/id), EINVAL (first_page % 64, before the slot
   * lookup), ENOENT (no slot or no bitmap), EINVAL (range rules), EFAULT (buffer). Nothing
   * changes unless every check passes.
   */
  clearDirtyLog(slotEnc: number, firstPage: number, numPages: number, mask: Uint32Array | null): void {
    this.slotsLock.lock();
    try {
      const slot = this.bitmapSlot(slotEnc, firstPage);
      // Values a u64 first_page or u32 num_pages cannot hold: after the slot checks, so that
      // a ring VM still answers ENXIO first (spec §3 step 1) whatever the arguments.
      if (!Number.isSafeInteger(firstPage) || firstPage < 0) throw new KvmError('EINVAL', `bad first_page ${firstPage}`, 'first_page');
      if (!Number.isInteger(numPages) || numPages < 0 || numPages > 0xffffffff) {
        throw new KvmError('EINVAL', `bad num_pages ${numPages}`, 'num_pages');
      }
      const npages = slot.pageCount;
      if (firstPage > npages) throw new KvmError('EINVAL', `first_page ${firstPage} is past the slot end (${npages})`, 'first_page');
      if (numPages > npages - firstPage) {
        throw new KvmError('EINVAL', `num_pages ${numPages} runs past the slot end (${npages - firstPage} left)`, 'num_pages');
      }
      if (numPages < npages - firstPage && numPages % 64 !== 0) {
        throw new KvmError('EINVAL', `num_pages ${numPages} must be a multiple of 64 unless it reaches the slot end`, 'num_pages');
      }
      const words = bitmapWords(numPages);
      // copy_from_user of ALIGN(num_pages, 64) / 8 bytes: with num_pages 0 nothing is read, so
      // even a NULL bitmap succeeds (fidelity, issue 7: observed on 6.18, scenario clear-null-bitmap).
      if (words > 0 && (mask === null || mask.length < words)) {
        throw new KvmError('EFAULT', 'bad dirty_bitmap buffer', 'dirty_bitmap');
      }
      this.block.f64[VM_FLOATS.CLEAR_CALLS]! += 1;
      if (numPages === 0 || mask === null) return; // (mask is null only when num_pages is 0)
      let cleared = 0;
      this.mmuLock.lock();
      try {
        const r = clearAndProtect(slot, firstPage, numPages, mask);
        cleared = r.cleared;
        this.block.f64[VM_FLOATS.PAGES_REPROTECTED]! += r.reprotected;
      } finally {
        this.mmuLock.unlock();
        this.accountHold(VM_FLOATS.MMU_HOLD_CLEAR_TOTAL_NS, VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS);
      }
      if (cleared > 0) this.flushRemoteTlbs();
    } finally {
      this.slotsLock.unlock();
    }
  }

  /**
   * mark_page_dirty_in_slot with no running vCPU (a device's DMA): the slot's bitmap when it
   * has one (a bitmap VM, or a ring VM with ring-with-bitmap); a ring VM without it cannot log
   * the write — the kernel WARNs and the page is lost. Returns what became of the record.
   */
  markPageDirtyNoVcpu(slot: Memslot, page: number): NoVcpuMark {
    if (!slot.logDirty) return NoVcpuMark.NOT_LOGGING;
    if (this.ringBytes !== 0 && !this.ringWithBitmap) {
      this.warn();
      this.block.f64[VM_FLOATS.NO_VCPU_WRITES_LOST]! += 1;
      return NoVcpuMark.LOST;
    }
    const bitmap = slot.bitmap;
    // Logging on but no bitmap yet: a flags change in progress; the kernel sets no bit either.
    if (bitmap === null || !slot.hasBitmap) return NoVcpuMark.NOT_LOGGING;
    setDirtyBit(bitmap, page);
    return NoVcpuMark.LOGGED;
  }

  // ------------------------------------------------------------------------------------------
  // Requests, kicks and the remote TLB flush

  /**
   * kvm_flush_remote_tlbs. Post TLB_FLUSH to every vCPU, then wait until none of them can still
   * be executing guest code with its old TLB: each vCPU is either outside guest mode (it
   * processes the request before it next enters) or has acknowledged by clearing the bit at an
   * instruction boundary. Because a guest store and the acknowledgement are ordered in the
   * vCPU's thread (store, then Atomics clear of the bit), a store made through a stale entry
   * lands before the acknowledgement — before this returns, so before userspace copies the
   * page — and any later store misses the flushed TLB, reads the protected SPTE and faults.
   * Without this wait, a vCPU that read "writable" just before the re-protect could store
   * after the copy, and that page would be lost.
   */
  flushRemoteTlbs(): void {
    this.requestAllAndWait(VcpuRequest.TLB_FLUSH);
    this.block.f64[VM_FLOATS.TLB_FLUSHES]! += 1;
  }

  /** kvm_make_all_cpus_request(..., wait): post `bits`, then wait for every vCPU in guest mode. */
  requestAllAndWait(bits: number): void {
    const n = this.createdVcpus;
    for (let i = 0; i < n; i++) {
      const b = this.vcpuBlocks[i];
      if (b) Atomics.or(b.i32, V.REQUESTS, bits);
    }
    // Mutant flush-no-wait (stress harness): return without waiting — and without the wait's
    // step point, so that a controlled scheduler does not hold the caller back either.
    if (this.hasMutant(KernelMutant.FLUSH_NO_WAIT)) return;
    if (stepHook.active) stepHook.at(Step.TLB_FLUSH_WAIT, bits, 0);
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const b = this.vcpuBlocks[i];
      if (!b) continue;
      const w = b.i32;
      const deadline = t0 + KERNEL_WAIT_TIMEOUT_MS;
      while (Atomics.load(w, V.MODE) === VcpuMode.IN_GUEST && (Atomics.load(w, V.REQUESTS) & bits) !== 0) {
        if (now() >= deadline) throw new WaitTimeoutError(`TLB flush: vCPU ${i} never acknowledged`, KERNEL_WAIT_TIMEOUT_MS);
        waitWhileEqual(w, V.MODE, VcpuMode.IN_GUEST, 2);
      }
    }
    this.block.f64[VM_FLOATS.TLB_FLUSH_WAIT_NS]! += (now() - t0) * 1e6;
  }

  /** kvm_vcpu_kick: make the vCPU leave guest mode at its next instruction boundary (-EINTR). */
  kickVcpu(index: number): void {
    const w = this.vcpuBlock(index).i32;
    Atomics.or(w, V.REQUESTS, VcpuRequest.KICK);
    // kvm_vcpu_kick also wakes a vCPU halted in the kernel (Vcpu.haltInKernel waits on REQUESTS).
    Atomics.notify(w, V.REQUESTS);
  }

  /** A kernel WARN (counted; the emulator never prints from a vCPU thread). */
  warn(): void {
    Atomics.add(this.block.i32, VM_WORDS.WARNINGS, 1);
  }

  get warnings(): number {
    return Atomics.load(this.block.i32, VM_WORDS.WARNINGS);
  }

  /** Snapshot of the VM-wide statistics. */
  stats(): VmStats {
    const f = this.block.f64;
    return {
      resetCalls: f[VM_FLOATS.RESET_CALLS]!,
      entriesReset: f[VM_FLOATS.ENTRIES_RESET]!,
      resetBatchesSkipped: f[VM_FLOATS.RESET_BATCHES_SKIPPED]!,
      pagesReprotected: f[VM_FLOATS.PAGES_REPROTECTED]!,
      tlbFlushes: f[VM_FLOATS.TLB_FLUSHES]!,
      tlbFlushWaitMs: f[VM_FLOATS.TLB_FLUSH_WAIT_NS]! / 1e6,
      mmuLockAcquires: f[VM_FLOATS.MMU_LOCK_ACQUIRES]!,
      mmuLockTotalHoldUs: f[VM_FLOATS.MMU_LOCK_HOLD_TOTAL_NS]! / 1e3,
      mmuLockMaxHoldUs: f[VM_FLOATS.MMU_LOCK_HOLD_MAX_NS]! / 1e3,
      kernelBugs: f[VM_FLOATS.KERNEL_BUGS]!,
      warnings: this.warnings,
      getCalls: f[VM_FLOATS.GET_CALLS]!,
      clearCalls: f[VM_FLOATS.CLEAR_CALLS]!,
      mmuHoldGetTotalUs: f[VM_FLOATS.MMU_HOLD_GET_TOTAL_NS]! / 1e3,
      mmuHoldGetMaxUs: f[VM_FLOATS.MMU_HOLD_GET_MAX_NS]! / 1e3,
      mmuHoldClearTotalUs: f[VM_FLOATS.MMU_HOLD_CLEAR_TOTAL_NS]! / 1e3,
      mmuHoldClearMaxUs: f[VM_FLOATS.MMU_HOLD_CLEAR_MAX_NS]! / 1e3,
      mmuHoldResetTotalUs: f[VM_FLOATS.MMU_HOLD_RESET_TOTAL_NS]! / 1e3,
      mmuHoldResetMaxUs: f[VM_FLOATS.MMU_HOLD_RESET_MAX_NS]! / 1e3,
      noVcpuWritesLost: f[VM_FLOATS.NO_VCPU_WRITES_LOST]!,
    };
  }

  /** Bytes of a slot's dirty bitmap (for userspace buffers). */
  static bitmapBytes(pageCount: number): number {
    return bitmapBytes(pageCount);
  }

  /** Convenience: a memslot of `pageCount` pages at `baseGfn` (KVM_SET_USER_MEMORY_REGION). */
  createMemslot(opts: { id: number; asId?: number; baseGfn: number; pageCount: number; logDirty?: boolean }): Memslot {
    this.setUserMemoryRegion({
      slot: ((opts.asId ?? 0) << 16) | opts.id,
      flags: opts.logDirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
      guestPhysAddr: opts.baseGfn * PAGE_SIZE,
      memorySize: opts.pageCount * PAGE_SIZE, // not `<< PAGE_SHIFT`: 2 GiB and up overflow 32 bits
    });
    return this.memslots.findById(opts.asId ?? 0, opts.id)!;
  }

  /** Convenience: toggle LOG_DIRTY_PAGES on an existing slot (a flags-only region update). */
  setLogDirty(id: number, on: boolean, asId = 0): void {
    const slot = this.memslots.findById(asId, id);
    if (!slot) throw new KvmError('EINVAL', `slot ${id} does not exist`, 'slot');
    const flags = on ? slot.flags | KVM_MEM_LOG_DIRTY_PAGES : slot.flags & ~KVM_MEM_LOG_DIRTY_PAGES;
    this.setUserMemoryRegion({
      slot: (asId << 16) | id,
      flags,
      guestPhysAddr: slot.baseGfn * PAGE_SIZE,
      memorySize: slot.pageCount * PAGE_SIZE,
    });
  }

  /** Convenience: delete a slot. */
  deleteMemslot(id: number, asId = 0): void {
    this.setUserMemoryRegion({ slot: (asId << 16) | id, flags: 0, guestPhysAddr: 0, memorySize: 0 });
  }
}

export interface VmStats {
  resetCalls: number;
  entriesReset: number;
  resetBatchesSkipped: number;
  pagesReprotected: number;
  tlbFlushes: number;
  tlbFlushWaitMs: number;
  mmuLockAcquires: number;
  mmuLockTotalHoldUs: number;
  mmuLockMaxHoldUs: number;
  kernelBugs: number;
  warnings: number;
  getCalls: number;
  clearCalls: number;
  mmuHoldGetTotalUs: number;
  mmuHoldGetMaxUs: number;
  mmuHoldClearTotalUs: number;
  mmuHoldClearMaxUs: number;
  mmuHoldResetTotalUs: number;
  mmuHoldResetMaxUs: number;
  noVcpuWritesLost: number;
}
