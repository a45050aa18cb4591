/**
 * The VM and its ioctls (kvm_main.c's VM fd): KVM_CREATE_VM and attaching from another thread,
 * KVM_CHECK_EXTENSION, KVM_ENABLE_CAP, KVM_CREATE_VCPU and the ring mapping here; the other
 * ioctls in their own modules, reached through thin methods so that callers see one `Vm`:
 *  - KVM_SET_USER_MEMORY_REGION: memslot-ioctl.ts;
 *  - KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, writes with no vCPU: dirty-log-ioctl.ts;
 *  - KVM_RESET_DIRTY_RINGS: ring-reset.ts;
 *  - the remote TLB flush, requests and kicks: vcpu-requests.ts;
 *  - statistics: vm-stats.ts.
 * Ioctls run in the caller's thread; the state they touch (VmCore) is in shared memory.
 */
import {
  KVM_CAP_DIRTY_LOG_RING,
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP,
  KVM_ADDRESS_SPACE_NUM,
  KVM_ADDRESS_SPACE_NUM_SMM,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_CAP_MULTI_ADDRESS_SPACE,
  KVM_DIRTY_LOG_INITIALLY_SET,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_DIRTY_RING_MAX_BYTES,
  KVM_DIRTY_RING_RSVD_ENTRIES,
} from '../abi/constants.js';
import { type RingViews, ringViews } from '../abi/dirty-gfn.js';
import { KvmError } from '../abi/errno.js';
import { SharedBlock } from '../abi/layout.js';
import { DirtyLogIoctl, type NoVcpuMark } from './dirty-log-ioctl.js';
import { validateRingBytes } from './dirty-ring.js';
import { MEMSLOT_TABLE_ENTRIES, MemslotLayout } from './memslot-layout.js';
import { type MemoryRegion, MemslotIoctl } from './memslot-ioctl.js';
import { type Memslot, type SlotBuffers, bitmapBytes } from './memslots.js';
import { PageTrack } from './page-track.js';
import { RingReset } from './ring-reset.js';
import { VcpuLayout, VcpuRequest } from './vcpu-layout.js';
import { flagsArg, optionalBooleanArg, showArg, optionalFunctionArg, structArg, u32Arg, u64Arg, u64NumberArg } from './ioctl-args.js';
import { KERNEL_MUTANT_MASK } from './mutants.js';
import { flushRemoteTlbs, kickVcpu, requestAllAndWait } from './vcpu-requests.js';
import { MAX_VCPUS, type RingSpace, VmCore, type VmOptions } from './vm-core.js';
import { VmLayout } from './vm-layout.js';
import { type VmStats, readVmStats } from './vm-stats.js';

export { NoVcpuMark } from './dirty-log-ioctl.js';
export type { MemoryRegion } from './memslot-ioctl.js';
export { MAX_VCPUS, type RingSpace, type VmOptions } from './vm-core.js';
export type { VmStats } from './vm-stats.js';

/** Every SharedArrayBuffer of a VM: plain data, posted once to each thread that attaches. */
export interface VmBuffers {
  readonly vm: SharedArrayBuffer;
  readonly memslots: SharedArrayBuffer;
  readonly vcpus: readonly SharedArrayBuffer[];
  /** Each vCPU's ring words (over its own buffer, or inside `ringSpace`'s memory). */
  readonly rings: readonly (Int32Array | null)[];
  /** VmOptions.ringSpace: the memory the rings are placed in, for a thread that runs code in it. */
  readonly ringSpace?: RingSpace;
  readonly slots: readonly (SlotBuffers | null)[];
  /** Page write-tracking state: notifier table, SRCU words, statistics (src/kernel/page-track.ts). */
  readonly pageTrack: SharedArrayBuffer;
}

const VM_WORDS = VmLayout.words;
const VCPU_REQUEST_MASK: number = Object.values(VcpuRequest).reduce((m, b) => m | b, 0);
const U32_MAX = 0xffffffff;
const MANUAL_PROTECT_BITS = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;

export class Vm extends VmCore {
  /** Page write-tracking: gfn_track counts and the page-track notifiers. */
  readonly pageTrack: PageTrack;
  private readonly memslotIoctl: MemslotIoctl;
  private readonly dirtyLog: DirtyLogIoctl;
  private readonly ringReset: RingReset;

  private constructor(
    vmBuffer: SharedArrayBuffer,
    memslotBuffer: SharedArrayBuffer,
    options: VmOptions,
    pageTrackBuffer?: SharedArrayBuffer,
  ) {
    super(vmBuffer, memslotBuffer, options);
    this.pageTrack = new PageTrack(this, MAX_VCPUS, pageTrackBuffer);
    this.memslotIoctl = new MemslotIoctl(this, this.pageTrack);
    this.dirtyLog = new DirtyLogIoctl(this);
    this.ringReset = new RingReset(this);
  }

  /** KVM_CREATE_VM. */
  static create(options: VmOptions = {}): Vm {
    checkVmOptions(options);
    const vm = new Vm(
      new SharedArrayBuffer(VmLayout.bytes),
      new SharedArrayBuffer(MemslotLayout.bytes * MEMSLOT_TABLE_ENTRIES),
      options,
    );
    Atomics.store(vm.block.i32, VM_WORDS.MUTANTS, options.mutants ?? 0);
    Atomics.store(vm.block.i32, VM_WORDS.ADDRESS_SPACES, options.smm ? KVM_ADDRESS_SPACE_NUM_SMM : KVM_ADDRESS_SPACE_NUM);
    return vm;
  }

  /** Attach to a VM created in another thread. */
  static attach(buffers: VmBuffers, options: VmOptions = {}): Vm {
    checkVmBuffers(buffers);
    checkVmOptions(options);
    const vm = new Vm(buffers.vm, buffers.memslots, buffers.ringSpace ? { ...options, ringSpace: buffers.ringSpace } : options, buffers.pageTrack);
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
      ...this.vcpuBuffers(),
      slots: this.memslots.allBuffers(),
      pageTrack: this.pageTrack.buffer,
      ...(this.options.ringSpace && { ringSpace: this.options.ringSpace }),
    };
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
        return MANUAL_PROTECT_BITS;
      case KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP:
        return this.options.offerRingWithBitmap ? 1 : 0;
      case KVM_CAP_MULTI_ADDRESS_SPACE:
        // Only a kernel with more than one address space knows the cap (observed: 0 without SMM).
        return this.addressSpaces > KVM_ADDRESS_SPACE_NUM ? this.addressSpaces : 0;
      default:
        return 0;
    }
  }

  /**
   * KVM_ENABLE_CAP. `args0` is the u64 args[0]; `flags` is cap.flags (ignored by the ring
   * caps, as observed; must be 0 for manual protect).
   */
  enableCap(cap: number, args0: number | bigint, flags = 0): void {
    // struct kvm_enable_cap: u32 cap, u32 flags, u64 args[0]; a value none of them can hold is
    // refused like a value the cap does not accept (EINVAL), before anything changes.
    u32Arg(cap, 'cap');
    u32Arg(flags, 'flags');
    const value = u64Arg(args0, 'args[0]');
    switch (cap) {
      case KVM_CAP_DIRTY_LOG_RING:
      case KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
        return this.enableDirtyRing(cap, value);
      case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
        return this.enableManualProtect(value, flags);
      case KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP:
        return this.enableRingWithBitmap(flags);
      default:
        throw new KvmError('EINVAL', `capability ${cap} cannot be enabled`, 'cap');
    }
  }

  /** Caps 192 and 223: one ring size for the VM, set once, before the first vCPU. */
  private enableDirtyRing(cap: number, args0: number | bigint): void {
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
  }

  /** Cap 168: ENABLE, optionally with INITIALLY_SET. */
  private enableManualProtect(value: bigint, flags: number): void {
    if (flags !== 0) throw new KvmError('EINVAL', 'cap.flags must be 0', 'flags');
    if ((value & ~BigInt(MANUAL_PROTECT_BITS)) !== 0n) throw new KvmError('EINVAL', `unknown manual-protect bits in ${value}`, 'args[0]');
    const bits = Number(value);
    if (bits === KVM_DIRTY_LOG_INITIALLY_SET) {
      throw new KvmError('EINVAL', 'INITIALLY_SET needs MANUAL_PROTECT_ENABLE', 'args[0]');
    }
    Atomics.store(this.block.i32, VM_WORDS.MANUAL_PROTECT, bits);
  }

  /** Cap 225 (arm64's, offered on request): needs a ring and no memslot yet. */
  private enableRingWithBitmap(flags: number): void {
    if (!this.options.offerRingWithBitmap) throw new KvmError('EINVAL', 'capability not offered on x86', 'cap');
    if (this.ringBytes === 0) throw new KvmError('EINVAL', 'ring-with-bitmap needs a dirty ring', 'cap');
    if (flags !== 0) throw new KvmError('EINVAL', 'cap.flags must be 0', 'flags');
    this.slotsLock.with(() => {
      if (this.memslots.active().length > 0) {
        throw new KvmError('EINVAL', 'ring-with-bitmap must be enabled before any memslot exists', 'cap');
      }
      Atomics.store(this.block.i32, VM_WORDS.RING_WITH_BITMAP, 1);
    });
  }

  // ------------------------------------------------------------------------------------------
  // vCPUs

  /** KVM_CREATE_VCPU: returns the new vCPU's index. Its ring (if any) starts zeroed. */
  createVcpu(): number {
    return this.slotsLock.with(() => {
      const index = this.createdVcpus;
      if (index >= MAX_VCPUS) throw new KvmError('EINVAL', `at most ${MAX_VCPUS} vCPUs`, 'vcpu');
      const block = new SharedBlock(VcpuLayout);
      Atomics.store(block.i32, VcpuLayout.words.VCPU_ID, index);
      const ring = this.ringBytes > 0 ? this.allocateRing(index) : null;
      this.attachVcpu(index, block.buffer, ring);
      Atomics.store(this.block.i32, VM_WORDS.CREATED_VCPUS, index + 1);
      return index;
    });
  }

  /**
   * Emulator only (stress scenarios, tests): start vCPU `index`'s ring at free-running index
   * `start`, as if that many entries had been pushed, harvested and reset — the state of a ring
   * that has lapped, reached without the pushes (entry flags are 0 either way). Only for a
   * vCPU whose ring is still untouched and that no other thread has attached yet.
   */
  presetRingIndex(index: number, start: number): void {
    this.vcpuIndexArg(index);
    if (!Number.isInteger(start) || start < 0 || start > U32_MAX) {
      throw new KvmError('EINVAL', `ring start ${showArg(start)} is not a u32 index`, 'start');
    }
    const ring = this.ring(index);
    if (ring === null) throw new KvmError('EINVAL', `vCPU ${index} has no dirty ring`, 'vcpu');
    if (ring.dirtyIndexShared !== 0 || ring.resetIndexShared !== 0) {
      throw new KvmError('EBUSY', `vCPU ${index}'s ring has been used already`, 'vcpu');
    }
    const block = this.vcpuBlock(index);
    Atomics.store(block.i32, VcpuLayout.words.DIRTY_INDEX, start | 0);
    Atomics.store(block.i32, VcpuLayout.words.RESET_INDEX, start | 0);
    // This thread's ring object mirrors dirty_index: build it again from the shared words.
    this.attachVcpu(index, block.buffer, this.ringWords(index));
  }

  /**
   * mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET: the ring, for userspace. An executable
   * mapping is refused with EPERM and a private one with EINVAL, in that order: as observed on
   * 6.18, PROT_EXEC never reaches KVM's own EINVAL check — do_mmap()'s noexec check on the vCPU
   * fd's mount says EPERM first, also for MAP_PRIVATE | PROT_EXEC; a private mapping without
   * exec reaches kvm_vcpu_mmap: EINVAL (docs/PROTOCOL.md, section 8).
   */
  mmapRing(index: number, prot: { shared?: boolean; exec?: boolean } = {}): RingViews {
    structArg(prot, 'prot');
    const exec = optionalBooleanArg(prot.exec, 'prot.exec');
    const shared = optionalBooleanArg(prot.shared, 'prot.shared');
    u32Arg(index, 'vcpu');
    if (exec === true) throw new KvmError('EPERM', 'the ring must not be mapped PROT_EXEC', 'prot');
    if (shared === false) throw new KvmError('EINVAL', 'the ring must be mapped MAP_SHARED', 'flags');
    const buf = this.ringWords(index);
    if (!buf) throw new KvmError('EINVAL', `vCPU ${index} has no dirty ring`, 'offset');
    return ringViews(buf);
  }

  /** A vCPU index: a created vCPU's (EINVAL otherwise, as a vCPU id the VM does not have). */
  private vcpuIndexArg(index: number): void {
    if (u32Arg(index, 'vcpu') >= this.createdVcpus) throw new KvmError('EINVAL', `no vCPU ${index}`, 'vcpu');
  }

  // ------------------------------------------------------------------------------------------
  // The ioctls of other modules

  /** KVM_SET_USER_MEMORY_REGION (memslot-ioctl.ts). */
  setUserMemoryRegion(region: MemoryRegion): void {
    this.memslotIoctl.setUserMemoryRegion(region);
  }

  /** Convenience: a memslot of `pageCount` pages at `baseGfn` (KVM_SET_USER_MEMORY_REGION). */
  createMemslot(opts: { id: number; asId?: number; baseGfn: number; pageCount: number; logDirty?: boolean }): Memslot {
    return this.memslotIoctl.createMemslot(opts);
  }

  /** Convenience: toggle LOG_DIRTY_PAGES on an existing slot (a flags-only region update). */
  setLogDirty(id: number, on: boolean, asId = 0): void {
    this.memslotIoctl.setLogDirty(id, on, asId);
  }

  /** Convenience: delete a slot. */
  deleteMemslot(id: number, asId = 0): void {
    this.memslotIoctl.deleteMemslot(id, asId);
  }

  /** KVM_GET_DIRTY_LOG (dirty-log-ioctl.ts). */
  getDirtyLog(slotEnc: number, out: Uint8Array | Uint32Array | null): void {
    this.dirtyLog.getDirtyLog(slotEnc, out);
  }

  /** KVM_CLEAR_DIRTY_LOG (dirty-log-ioctl.ts). */
  clearDirtyLog(slotEnc: number, firstPage: number, numPages: number, mask: Uint8Array | Uint32Array | null): void {
    this.dirtyLog.clearDirtyLog(slotEnc, firstPage, numPages, mask);
  }

  /** mark_page_dirty_in_slot with no running vCPU (dirty-log-ioctl.ts). */
  markPageDirtyNoVcpu(slot: Memslot, page: number): NoVcpuMark {
    return this.dirtyLog.markPageDirtyNoVcpu(slot, page);
  }

  /** KVM_RESET_DIRTY_RINGS (ring-reset.ts). */
  resetDirtyRings(signalPending?: () => boolean): number {
    optionalFunctionArg(signalPending, 'signalPending');
    return this.ringReset.resetDirtyRings(signalPending);
  }

  /** kvm_flush_remote_tlbs (vcpu-requests.ts). */
  flushRemoteTlbs(): void {
    flushRemoteTlbs(this);
  }

  /** kvm_make_all_cpus_request(..., wait) (vcpu-requests.ts). */
  requestAllAndWait(bits: number): void {
    flagsArg(bits, VCPU_REQUEST_MASK, 'bits');
    requestAllAndWait(this, bits);
  }

  /** kvm_vcpu_kick (vcpu-requests.ts). */
  kickVcpu(index: number): void {
    this.vcpuIndexArg(index);
    kickVcpu(this, index);
  }

  /** Snapshot of the VM-wide statistics (vm-stats.ts). */
  stats(): VmStats {
    return readVmStats(this);
  }

  /** Bytes of a slot's dirty bitmap (for userspace buffers). */
  static bitmapBytes(pageCount: number): number {
    u64NumberArg(pageCount, 'pageCount');
    return bitmapBytes(pageCount);
  }
}

/** KVM_CREATE_VM's options: known mutant bits, booleans (EINVAL otherwise). */
function checkVmOptions(options: VmOptions): void {
  structArg(options, 'options');
  if (options.mutants !== undefined) flagsArg(options.mutants, KERNEL_MUTANT_MASK, 'options.mutants');
  optionalBooleanArg(options.offerRingWithBitmap, 'options.offerRingWithBitmap');
  optionalBooleanArg(options.smm, 'options.smm');
  if (options.ringSpace !== undefined) ringSpaceArg(options.ringSpace);
}

/** Buffers handed over from the VM's creator: the shared blocks of the right sizes (EINVAL otherwise). */
function checkVmBuffers(buffers: VmBuffers): void {
  structArg(buffers, 'buffers');
  const sized = (b: unknown, bytes: number, param: string): void => {
    if (!(b instanceof SharedArrayBuffer) || b.byteLength !== bytes) throw new KvmError('EINVAL', `${param} is not the VM's ${bytes}-byte shared block`, param);
  };
  sized(buffers.vm, VmLayout.bytes, 'buffers.vm');
  sized(buffers.memslots, MemslotLayout.bytes * MEMSLOT_TABLE_ENTRIES, 'buffers.memslots');
  if (!(buffers.pageTrack instanceof SharedArrayBuffer)) throw new KvmError('EINVAL', 'buffers.pageTrack is not a SharedArrayBuffer', 'buffers.pageTrack');
  const isShared = (b: unknown): boolean => b instanceof SharedArrayBuffer;
  const slotOk = (b: unknown): boolean => {
    if (b === null) return true;
    if (typeof b !== 'object') return false;
    const s = b as Partial<Record<keyof SlotBuffers, unknown>>;
    return [s.memory, s.spte, s.gfnTrack].every(isShared) && (s.bitmap === null || isShared(s.bitmap));
  };
  const ringOk = (b: unknown): boolean => b === null || (b instanceof Int32Array && isShared(b.buffer));
  const elements = { vcpus: isShared, rings: ringOk, slots: slotOk } as const;
  for (const name of ['vcpus', 'rings', 'slots'] as const) {
    const list: unknown = buffers[name];
    if (!Array.isArray(list) || !list.every((b: unknown) => elements[name](b as never))) {
      throw new KvmError('EINVAL', `buffers.${name} is not a list of the VM's shared buffers`, `buffers.${name}`);
    }
  }
}

/** VmOptions.ringSpace: a shared WebAssembly.Memory and a 16-byte aligned offset in it (EINVAL otherwise). */
function ringSpaceArg(space: RingSpace): void {
  structArg(space, 'options.ringSpace');
  const isMemory = typeof WebAssembly !== 'undefined' && space.memory instanceof WebAssembly.Memory;
  if (!isMemory || !(space.memory.buffer instanceof SharedArrayBuffer)) throw new KvmError('EINVAL', 'ringSpace.memory must be a shared WebAssembly.Memory', 'options.ringSpace');
  if (!Number.isInteger(space.byteOffset) || space.byteOffset < 0 || space.byteOffset % 16 !== 0) {
    throw new KvmError('EINVAL', `ringSpace.byteOffset ${showArg(space.byteOffset)} is not a 16-byte aligned offset`, 'options.ringSpace');
  }
}
