/**
 * The state of one VM that every VM ioctl shares (the emulator's `struct kvm`): the shared
 * block with its capability words and statistics, the memslot table, mmu_lock and slots_lock,
 * and each vCPU's shared block and dirty ring. Everything lives in shared memory, so a VM
 * created in one thread can be attached in any other and both see one VM.
 *
 * The ioctls themselves are in modules that take a VmCore (memslot-ioctl.ts, dirty-log-ioctl.ts,
 * ring-reset.ts, vcpu-requests.ts, vm-stats.ts); `Vm` (vm.ts) is the VmCore with its ioctl
 * surface.
 */
import { DIRTY_GFN_BYTES } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { showArg } from './ioctl-args.js';
import { SharedBlock } from '../abi/layout.js';
import { assertLittleEndian } from '../base/assert.js';
import { DirtyRing } from './dirty-ring.js';
import { MemslotTable } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { SharedMutex } from './sync.js';
import { type VcpuBlock, VcpuLayout } from './vcpu-layout.js';
import { type VmBlock, VmLayout } from './vm-layout.js';

/** The emulator's vCPU limit (KVM's x86 limit is far higher; threads are the cost here). */
export const MAX_VCPUS = 256;

export interface VmOptions {
  /** Mutant bits (src/kernel/mutants.ts). */
  readonly mutants?: number;
  /**
   * Model arm64's KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP (cap 225). x86 does not offer it; the
   * emulator offers it only when asked, for writes made without a running vCPU.
   */
  readonly offerRingWithBitmap?: boolean;
  /**
   * Model x86 SMM: a second address space (as_id 1) for memslots, their bitmaps and ring
   * entries, which a vCPU uses while in System Management Mode (Vcpu's SMI / RSM
   * instructions). Off by default, as on the host the fidelity expectations come from.
   */
  readonly smm?: boolean;
  /**
   * Where mmap of a vCPU fd places the rings in userspace's address space: a WebAssembly
   * harvester's linear memory, which its code reads the entries from directly. Ring i is
   * allocated at `byteOffset + i × ring bytes`; without it each ring is a SharedArrayBuffer of its own.
   */
  readonly ringSpace?: RingSpace;
}

/** A shared WebAssembly.Memory and the byte offset of the first ring in it (16-byte aligned). */
export interface RingSpace {
  readonly memory: WebAssembly.Memory;
  readonly byteOffset: number;
}

const VM_WORDS = VmLayout.words;
const VM_FLOATS = VmLayout.floats;

export class VmCore {
  readonly block: VmBlock;
  readonly memslots: MemslotTable;
  readonly mmuLock: SharedMutex;
  readonly slotsLock: SharedMutex;
  protected readonly options: VmOptions;
  private readonly vcpuBlocks: VcpuBlock[] = [];
  /**
   * Each attached vCPU's words (its block's i32), reached in one step: a remote request touches
   * them on every flush, and each object on the way is one more cold cache line after another
   * process ran on this core.
   */
  private readonly vcpuWordViews: Int32Array[] = [];
  /** Each vCPU's ring words: the whole of its own buffer, or its part of the ring space's memory. */
  private readonly ringBuffers: (Int32Array | null)[] = [];
  private readonly rings: (DirtyRing | null)[] = [];

  protected constructor(vmBuffer: SharedArrayBuffer, memslotBuffer: SharedArrayBuffer, options: VmOptions) {
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

  /** The ring was enabled through KVM_CAP_DIRTY_LOG_RING_ACQ_REL (rather than the original cap). */
  get ringAcqRel(): boolean {
    return Atomics.load(this.block.i32, VM_WORDS.RING_ACQ_REL) !== 0;
  }

  get manualProtect(): number {
    return Atomics.load(this.block.i32, VM_WORDS.MANUAL_PROTECT);
  }

  /** kvm_arch_nr_memslot_as_ids: as_id must be below this everywhere a slot is named. */
  get addressSpaces(): number {
    return Atomics.load(this.block.i32, VM_WORDS.ADDRESS_SPACES);
  }

  /** The memory the rings are placed in (VmOptions.ringSpace), or null. */
  get ringMemory(): WebAssembly.Memory | null {
    return this.options.ringSpace?.memory ?? null;
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
  // vCPUs as this thread knows them

  /**
   * The memory of a new vCPU's ring (zeroed): a buffer of its own, or its place in the ring
   * space, which must be shared and large enough (ENOMEM otherwise, as a failed mmap).
   */
  protected allocateRing(index: number): Int32Array {
    const space = this.options.ringSpace;
    if (space === undefined) return new Int32Array(new SharedArrayBuffer(this.ringBytes));
    const at = space.byteOffset + index * this.ringBytes;
    const buffer = space.memory.buffer;
    if (at + this.ringBytes > buffer.byteLength) {
      throw new KvmError('ENOMEM', `ring ${index} at byte ${at} does not fit the ring space's ${buffer.byteLength} B`, 'ringSpace');
    }
    const words = new Int32Array(buffer, at, this.ringBytes / Int32Array.BYTES_PER_ELEMENT);
    words.fill(0);
    return words;
  }

  /** Make a vCPU created elsewhere (or just now) known to this thread. */
  attachVcpu(index: number, block: SharedArrayBuffer, ring: Int32Array | null): void {
    const vb = new SharedBlock(VcpuLayout, block);
    this.vcpuBlocks[index] = vb;
    this.vcpuWordViews[index] = vb.i32;
    this.ringBuffers[index] = ring;
    this.rings[index] = ring
      ? new DirtyRing(ring, vb, {
          onOverflow: () => this.warn(),
          flagsBeforePayload: this.hasMutant(KernelMutant.FLAGS_BEFORE_PAYLOAD),
          lateSoftFull: this.hasMutant(KernelMutant.LATE_SOFT_FULL),
          pushNoWmb: this.hasMutant(KernelMutant.PUSH_NO_WMB),
          acqRel: this.ringAcqRel,
          relaxedResetFlags: this.hasMutant(KernelMutant.RESET_RELAXED_FLAGS),
        })
      : null;
  }

  vcpuBlock(index: number): VcpuBlock {
    const b = this.vcpuBlocks[index];
    if (!b) throw new KvmError('EINVAL', `no vCPU ${showArg(index)}`, 'vcpu');
    return b;
  }

  /** vCPU `index`'s block if this thread has attached it, else undefined (no error). */
  attachedVcpuBlock(index: number): VcpuBlock | undefined {
    return this.vcpuBlocks[index];
  }

  /** The words of every vCPU this thread has attached, by index (holes for the others). */
  get vcpuWords(): readonly (Int32Array | undefined)[] {
    return this.vcpuWordViews;
  }

  ring(index: number): DirtyRing | null {
    return this.rings[index] ?? null;
  }

  /** The ring's words (what mmap of the vCPU fd maps), null without a ring. */
  ringWords(index: number): Int32Array | null {
    return this.ringBuffers[index] ?? null;
  }

  get vcpuCount(): number {
    return this.vcpuBlocks.length;
  }

  /** Every attached vCPU's block and ring buffer, for handing to another thread. */
  protected vcpuBuffers(): { vcpus: SharedArrayBuffer[]; rings: (Int32Array | null)[] } {
    return { vcpus: this.vcpuBlocks.map((b) => b.buffer), rings: this.ringBuffers.slice() };
  }

  // ------------------------------------------------------------------------------------------
  // Kernel warnings

  /** A kernel WARN (counted; the emulator never prints from a vCPU thread). */
  warn(): void {
    Atomics.add(this.block.i32, VM_WORDS.WARNINGS, 1);
  }

  get warnings(): number {
    return Atomics.load(this.block.i32, VM_WORDS.WARNINGS);
  }
}
