/**
 * The functions a C harvester imports (include/dirtyring.h), implemented over the harvester's
 * view of the VM. An ordered access (READ_ONCE, smp_load_acquire, smp_store_release, WRITE_ONCE)
 * to a ring entry goes through that ring's mapping accessor with the same ordering, so it is a
 * step point in controlled runs and a modelled access under a weak memory model, exactly as for
 * a TypeScript harvester; elsewhere in the module's memory it is an Atomics access — or, for the
 * static variables of a harvester on several threads in a controlled run, a modelled one
 * (wasm-statics.ts). In free runs plain C loads and stores never reach the host.
 *
 * The ioctls take the real request numbers and structs and answer as libc's ioctl() does
 * underneath: the result, or −errno (the header turns that into −1 and errno).
 */
import { isKvmError } from '../../abi/errno.js';
import { KVM_DIRTY_GFN_F_RESET } from '../../abi/constants.js';
import { mem } from '../../kernel/wmm/mem.js';
import { Barrier } from '../../kernel/wmm/ordering.js';
import type { Collection, HarvesterKvm } from '../contract.js';
import { RingMapping } from '../ring-mapping.js';
import { StaticAccess, type WasmStatics } from './wasm-statics.js';
import {
  KVM_CLEAR_DIRTY_LOG,
  KVM_GET_DIRTY_LOG,
  KVM_RESET_DIRTY_RINGS,
  KvmClearDirtyLog,
  KvmDirtyLog,
  WASM_VM_FD,
  WasmFence,
  WasmMemslot,
  WasmOrder,
} from './wasm-abi.js';

const EBADF = -9;
const EFAULT = -14;
const EINVAL = -22;
const ENOTTY = -25;
const ENTRY_BYTES = 16;
const TWO_POW_32 = 2 ** 32;
const U64_LOW = 0xffffffffn;
const FENCES: readonly number[] = [Barrier.MB, Barrier.RMB, Barrier.WMB];

/** Bytes of a narrow access by opcode: load8 / store8 1, load16 / store16 2, i64 load32 / store32 4. */
function narrowBytes(op: number): number {
  if (op === 0x34 || op === 0x35 || op === 0x3e) return 4;
  if (op === 0x2e || op === 0x2f || op === 0x32 || op === 0x33 || op === 0x3b || op === 0x3d) return 2;
  return 1;
}

/** Where the rings are in the module's memory (the ring space the harness chose), or none. */
export interface RingPlacement {
  readonly byteOffset: number;
  readonly ringBytes: number;
  readonly vcpus: number;
}

export class WasmHost {
  private readonly rings: (RingMapping | undefined)[] = [];
  private readonly fenceWord = new Int32Array(new SharedArrayBuffer(4));
  private collection: Collection = { final: false, ringFull: [] };
  private view: DataView | null = null;

  /**
   * `nativeStores`: the module runs as built (a free run), so its RESET marks are plain wasm
   * stores the harness does not see; they are counted in the rings before each reset instead.
   */
  constructor(
    private readonly kvm: HarvesterKvm,
    private readonly memory: WebAssembly.Memory,
    private readonly placement: RingPlacement | null,
    private readonly nativeStores = false,
    private readonly statics: WasmStatics | null = null,
  ) {}

  /**
   * The RESET marks since the last reset: every entry whose flags have RESET (the kernel clears
   * the flags of each entry it resets, and a vCPU never writes an entry userspace has not given
   * back), handed to the reset-count check as if made through the accessors.
   */
  private countMarks(): void {
    const p = this.placement;
    if (p === null) return;
    const words = new Int32Array(this.memory.buffer, p.byteOffset, (p.vcpus * p.ringBytes) / 4);
    for (let v = 0; v < p.vcpus; v++) {
      let marks = 0;
      const first = (v * p.ringBytes) / 4;
      for (let w = first; w < first + p.ringBytes / 4; w += ENTRY_BYTES / 4) if ((Atomics.load(words, w) & KVM_DIRTY_GFN_F_RESET) !== 0) marks++;
      if (marks > 0) this.mapping(v)?.addMarks(marks);
    }
  }

  private mapping(vcpu: number): RingMapping | null {
    let ring = this.rings[vcpu];
    if (ring === undefined) {
      const r = this.kvm.ring(vcpu);
      if (!(r instanceof RingMapping)) return null;
      ring = r;
      this.rings[vcpu] = r;
    }
    return ring;
  }

  /** The collection being run (ring_full_count / ring_full answer from it). */
  begin(c: Collection): void {
    this.collection = c;
  }

  /** The import object's `dirtyring` module. */
  imports(): Record<string, (...args: never[]) => number | bigint | void> {
    const k = this.kvm;
    return {
      ioctl: (fd: number, request: number, arg: number) => this.ioctl(fd, request >>> 0, arg >>> 0),
      vm_fd: () => WASM_VM_FD,
      vcpu_count: () => k.vcpuCount,
      ring: (vcpu: number) => this.errno(() => this.ringAddress(vcpu)),
      ring_entries: () => (this.placement === null ? 0 : this.placement.ringBytes / ENTRY_BYTES),
      ring_start: (vcpu: number) => this.errno(() => k.ring(vcpu).startIndex | 0),
      memslot_count: () => k.memslots.length,
      memslot: (i: number, out: number) => this.memslot(i, out >>> 0),
      ring_full_count: () => this.collection.ringFull.length,
      ring_full: (i: number) => this.collection.ringFull[i] ?? -1,
      report: (slot: number, offLo: number, offHi: number) => k.report(slot >>> 0, (offHi >>> 0) * TWO_POW_32 + (offLo >>> 0)),
      kick: (vcpu: number) =>
        this.errno(() => {
          k.kick(vcpu);
          return 0;
        }),
      load32: (addr: number, order: number) => this.load32(addr >>> 0, order),
      load64: (addr: number, order: number) => this.load64(addr >>> 0, order),
      store32: (addr: number, value: number, order: number) => this.store32(addr >>> 0, value, order),
      store64: (addr: number, value: bigint, order: number) => this.store64(addr >>> 0, value, order),
      fence: (kind: number) => this.fence(kind),
      thread_index: () => k.thread,
      thread_count: () => k.threads,
      barrier: () => k.barrier(),
      plain_load32: (addr: number, offset: number) => this.plainLoad32((addr >>> 0) + (offset >>> 0)),
      plain_load64: (addr: number, offset: number) => this.plainLoad64((addr >>> 0) + (offset >>> 0)),
      plain_store32: (addr: number, value: number, offset: number) => this.plainStore32((addr >>> 0) + (offset >>> 0), value),
      plain_store64: (addr: number, value: bigint, offset: number) => this.plainStore64((addr >>> 0) + (offset >>> 0), value),
      plain_load_narrow: (addr: number, offset: number, op: number) => this.loadNarrow((addr >>> 0) + (offset >>> 0), op),
      plain_store_narrow: (addr: number, value: number, offset: number, op: number) => this.storeNarrow((addr >>> 0) + (offset >>> 0), value, op),
      acquire_load32: (addr: number, offset: number) => this.load32(this.aligned((addr >>> 0) + (offset >>> 0), 4), WasmOrder.ACQ_REL),
      acquire_load64: (addr: number, offset: number) => this.load64(this.aligned((addr >>> 0) + (offset >>> 0), 8), WasmOrder.ACQ_REL),
      release_store32: (addr: number, value: number, offset: number) => this.store32(this.aligned((addr >>> 0) + (offset >>> 0), 4), value, WasmOrder.ACQ_REL),
      release_store64: (addr: number, value: bigint, offset: number) => this.store64(this.aligned((addr >>> 0) + (offset >>> 0), 8), value, WasmOrder.ACQ_REL),
    };
  }

  // A plain C access of an instrumented module: a ring entry's through its mapping's plain
  // accessor (a step point; under a weak model a load that may read an older store), any other
  // as the unmodified code would make it. Out of bounds traps, as the load itself would.

  private plainLoad32(addr: number): number {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 0) return at.ring.loadFlagsPlain(at.index) | 0;
    if (at !== null && at.field === 4) return at.ring.readSlot(at.index) | 0;
    if (at !== null && (at.field === 8 || at.field === 12)) {
      const offset = at.ring.readOffset(at.index);
      return (at.field === 8 ? offset % TWO_POW_32 : Math.floor(offset / TWO_POW_32)) | 0;
    }
    if (this.statics?.covers(addr, 4) === true) return this.statics.load32(addr, StaticAccess.PLAIN);
    return this.dataView(addr, 4).getInt32(addr, true);
  }

  private plainLoad64(addr: number): bigint {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 8) return BigInt.asIntN(64, BigInt(at.ring.readOffset(at.index)));
    if (this.statics?.covers(addr, 8) === true) return this.statics.load64(addr, StaticAccess.PLAIN);
    return this.dataView(addr, 8).getBigInt64(addr, true);
  }

  private plainStore64(addr: number, value: bigint): void {
    if (this.statics?.covers(addr, 8) === true) this.statics.store64(addr, value, StaticAccess.PLAIN);
    else this.dataView(addr, 8).setBigInt64(addr, value, true);
  }

  private plainStore32(addr: number, value: number): void {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 0) {
      if ((value >>> 0) === KVM_DIRTY_GFN_F_RESET) at.ring.storeResetPlain(at.index);
      else at.ring.storeFlagsPlain(at.index, value >>> 0);
      return;
    }
    if (this.statics?.covers(addr, 4) === true) this.statics.store32(addr, value, StaticAccess.PLAIN);
    else this.dataView(addr, 4).setInt32(addr, value, true);
  }

  /**
   * An 8- or 16-bit access (or an i64 one of 32 bits, `op` its opcode) made through the 32-bit
   * word that holds it, so that a byte of a ring entry or of a shared static is a step point and
   * modelled as the word is; one that straddles two words is made as it is.
   */
  private loadNarrow(addr: number, op: number): number {
    const bytes = narrowBytes(op);
    const shift = (addr % 4) * 8;
    if (bytes === 4 || shift / 8 + bytes > 4) return bytes === 4 ? this.plainLoad32(addr) : this.dataView(addr, bytes)[bytes === 1 ? 'getUint8' : 'getUint16'](addr, true);
    const v = this.plainLoad32(addr - shift / 8) >>> shift;
    const signed = op === 0x2c || op === 0x2e || op === 0x30 || op === 0x32;
    const left = 32 - bytes * 8;
    return signed ? (v << left) >> left : (v << left) >>> left;
  }

  /** A narrow store: the word that holds it, with its other bytes as memory has them, stored through the 32-bit path. */
  private storeNarrow(addr: number, value: number, op: number): void {
    const bytes = narrowBytes(op);
    const shift = (addr % 4) * 8;
    if (bytes === 4) return this.plainStore32(addr, value);
    const view = this.dataView(addr, bytes);
    if (shift / 8 + bytes > 4) return view.setUint16(addr, value, true);
    const word = addr - shift / 8;
    const mask = (bytes === 1 ? 0xff : 0xffff) << shift;
    this.plainStore32(word, (view.getInt32(word, true) & ~mask) | ((value << shift) & mask));
  }

  /** An atomic access's address: misaligned or out of bounds traps, as the instruction would. */
  private aligned(addr: number, bytes: number): number {
    if (addr % bytes !== 0) throw new WebAssembly.RuntimeError('unaligned atomic');
    if (addr + bytes > this.memory.buffer.byteLength) throw new WebAssembly.RuntimeError('memory access out of bounds');
    return addr;
  }

  private dataView(addr: number, bytes: number): DataView {
    const buffer = this.memory.buffer;
    if (addr + bytes > buffer.byteLength) throw new WebAssembly.RuntimeError('memory access out of bounds');
    if (this.view === null || this.view.buffer !== buffer) this.view = new DataView(buffer);
    return this.view;
  }

  /** mmap of vCPU `vcpu`'s ring: its address in the module's memory (the kernel's errno without a ring). */
  private ringAddress(vcpu: number): number {
    return this.kvm.ring(vcpu).byteOffset;
  }

  /** The ring mapping, entry index and byte within the entry of `addr`, or null outside the rings. */
  private ringAt(addr: number): { ring: RingMapping; index: number; field: number } | null {
    const p = this.placement;
    if (p === null) return null;
    const rel = addr - p.byteOffset;
    if (rel < 0 || rel >= p.vcpus * p.ringBytes) return null;
    const vcpu = Math.floor(rel / p.ringBytes);
    const ring = this.mapping(vcpu);
    if (ring === null) return null;
    const inRing = rel - vcpu * p.ringBytes;
    return { ring, index: Math.floor(inRing / ENTRY_BYTES), field: inRing % ENTRY_BYTES };
  }

  private load32(addr: number, order: number): number {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 0) return (order === WasmOrder.ACQ_REL ? at.ring.loadFlagsAcquire(at.index) : at.ring.loadFlagsPlain(at.index)) | 0;
    if (at !== null && at.field === 4) return at.ring.readSlot(at.index) | 0;
    if (this.statics?.covers(addr, 4) === true) return this.statics.load32(addr, order === WasmOrder.ACQ_REL ? StaticAccess.ACQUIRE : StaticAccess.PLAIN);
    return Atomics.load(this.words(addr, 4), 0);
  }

  private load64(addr: number, order: number): bigint {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 8 && order === WasmOrder.ONCE) return BigInt(at.ring.readOffset(at.index));
    if (this.statics?.covers(addr, 8) === true) return this.statics.load64(addr, order === WasmOrder.ACQ_REL ? StaticAccess.ACQUIRE : StaticAccess.PLAIN);
    return Atomics.load(this.words64(addr), 0);
  }

  private store32(addr: number, value: number, order: number): void {
    const at = this.ringAt(addr);
    if (at !== null && at.field === 0) {
      // A RESET mark counts for the reset-count check whatever its ordering (a plain one is the bug the model finds).
      if ((value >>> 0) === KVM_DIRTY_GFN_F_RESET && order === WasmOrder.ACQ_REL) at.ring.storeResetRelease(at.index);
      else if ((value >>> 0) === KVM_DIRTY_GFN_F_RESET) at.ring.storeResetPlain(at.index);
      else at.ring.storeFlagsPlain(at.index, value >>> 0);
      return;
    }
    if (this.statics?.covers(addr, 4) === true) this.statics.store32(addr, value, order === WasmOrder.ACQ_REL ? StaticAccess.RELEASE : StaticAccess.PLAIN);
    else Atomics.store(this.words(addr, 4), 0, value | 0);
  }

  private store64(addr: number, value: bigint, order: number): void {
    if (this.statics?.covers(addr, 8) === true) this.statics.store64(addr, value, order === WasmOrder.ACQ_REL ? StaticAccess.RELEASE : StaticAccess.PLAIN);
    else Atomics.store(this.words64(addr), 0, BigInt.asIntN(64, value));
  }

  private fence(kind: number): void {
    if (mem.active) {
      mem.fence(FENCES[kind] ?? Barrier.MB);
      return;
    }
    // An Atomics read-modify-write is sequentially consistent: a full fence for this thread.
    Atomics.add(this.fenceWord, 0, kind === WasmFence.MB ? 1 : 0);
  }

  private words(addr: number, bytes: number): Int32Array {
    if (addr % bytes !== 0 || addr + bytes > this.memory.buffer.byteLength) throw new RangeError(`unaligned or out-of-bounds ${bytes * 8}-bit access at ${addr}`);
    return new Int32Array(this.memory.buffer, addr, 1);
  }

  private words64(addr: number): BigInt64Array {
    if (addr % 8 !== 0 || addr + 8 > this.memory.buffer.byteLength) throw new RangeError(`unaligned or out-of-bounds 64-bit access at ${addr}`);
    return new BigInt64Array(this.memory.buffer, addr, 1);
  }

  private memslot(i: number, out: number): number {
    const s = this.kvm.memslots[i];
    if (s === undefined) return EINVAL;
    if (out % 8 !== 0 || out + WasmMemslot.BYTES > this.memory.buffer.byteLength) return EFAULT;
    const v = new DataView(this.memory.buffer, out, WasmMemslot.BYTES);
    v.setUint32(WasmMemslot.SLOT, s.slot, true);
    v.setUint32(WasmMemslot.ID, s.id, true);
    v.setUint32(WasmMemslot.AS_ID, s.asId, true);
    v.setBigUint64(WasmMemslot.BASE_GFN, BigInt(s.baseGfn), true);
    v.setBigUint64(WasmMemslot.NPAGES, BigInt(s.pageCount), true);
    return 0;
  }

  private ioctl(fd: number, request: number, arg: number): number {
    if (fd !== WASM_VM_FD) return EBADF;
    if (request === KVM_RESET_DIRTY_RINGS) {
      // With several threads another thread's marks may be in the rings, or reset by it while
      // this one counts: a native threaded module's marks are taken to be what each reset found.
      if (this.nativeStores && this.kvm.threads === 1) this.countMarks();
      const reset = this.errno(() => this.kvm.resetDirtyRings());
      if (this.nativeStores && this.kvm.threads > 1 && reset > 0) this.mapping(0)?.addMarks(reset);
      return reset;
    }
    if (request === KVM_GET_DIRTY_LOG) return this.getDirtyLog(arg);
    if (request === KVM_CLEAR_DIRTY_LOG) return this.clearDirtyLog(arg);
    return ENOTTY;
  }

  private getDirtyLog(arg: number): number {
    const v = this.struct(arg, KvmDirtyLog.BYTES);
    if (v === null) return EFAULT;
    const slot = v.getUint32(KvmDirtyLog.SLOT, true);
    const bitmap = this.bitmap(v.getBigUint64(KvmDirtyLog.BITMAP, true), this.slotPages(slot));
    if (bitmap === null) return EFAULT;
    return this.errno(() => {
      this.kvm.getDirtyLog(slot, bitmap as unknown as Uint32Array);
      return 0;
    });
  }

  private clearDirtyLog(arg: number): number {
    const v = this.struct(arg, KvmClearDirtyLog.BYTES);
    if (v === null) return EFAULT;
    const slot = v.getUint32(KvmClearDirtyLog.SLOT, true);
    const numPages = v.getUint32(KvmClearDirtyLog.NUM_PAGES, true);
    const firstPage = v.getBigUint64(KvmClearDirtyLog.FIRST_PAGE, true);
    const bitmap = this.bitmap(v.getBigUint64(KvmClearDirtyLog.BITMAP, true), numPages);
    if (bitmap === null) return EFAULT;
    // first_page beyond 2^53 is no page of any slot: the kernel's range check refuses it.
    const first = firstPage > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(firstPage);
    return this.errno(() => {
      this.kvm.clearDirtyLog(slot, first, numPages, bitmap as unknown as Uint32Array);
      return 0;
    });
  }

  private struct(arg: number, bytes: number): DataView | null {
    if (arg === 0 || arg + bytes > this.memory.buffer.byteLength) return null;
    return new DataView(this.memory.buffer, arg, bytes);
  }

  /** The user's bitmap for `pages` pages: ALIGN(pages, 64) / 8 bytes, as the kernel copies. */
  private bitmap(ptr: bigint, pages: number): Uint8Array | null {
    const bytes = Math.ceil(pages / 64) * 8;
    if (ptr > U64_LOW || Number(ptr) + bytes > this.memory.buffer.byteLength) return null;
    return new Uint8Array(this.memory.buffer, Number(ptr), bytes);
  }

  private slotPages(slot: number): number {
    return this.kvm.memslots.find((s) => s.slot === slot)?.pageCount ?? 0;
  }

  /** An ioctl or call on the module's behalf: its result, or −errno as the syscall returns it. */
  private errno(call: () => number): number {
    try {
      return call();
    } catch (e) {
      if (isKvmError(e)) return e.code;
      throw e;
    }
  }
}
