/**
 * One vCPU's write path (docs/PROTOCOL.md, section 7), in that vCPU's thread: what the CPU and
 * KVM's MMU do with a guest store. Allocation-free: it runs for every guest store.
 *  - hardware store: a page the TLB or the SPTE says is writable gets a plain store, and nothing
 *    is logged; a store to a write-protected page faults (a VM exit);
 *  - fast page fault: make the SPTE writable with a compare-and-swap *and then* mark the page
 *    dirty (this vCPU's ring, or the slot's bitmap); the instruction is retried after re-entry;
 *    one entry per page until a reset or CLEAR protects the page again;
 *  - emulated store (kvm_vcpu_write_guest): write, then mark dirty, on every store;
 *  - a store to a write-tracked page is always emulated and notified (tracked-write.ts).
 *
 * `Vcpu` extends this class (through VcpuFastPath, vcpu-fast-path.ts): the run loop and the write
 * path share one object, as the store fast path needs (a separate write-path object cost the
 * guest store a few per cent).
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, writePageHeader } from '../guest/guest-memory.js';
import { Edge, coverage, hit, noteBitmapSet, noteGuestStore, noteRecord } from './coverage.js';
import { setDirtyBit } from './dirty-bitmap.js';
import type { DirtyRing } from './dirty-ring.js';
import { SpteBits } from './memslot-layout.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { modelledSpteLoad, modelledSpteMakeWritable } from './mmu-wmm.js';
import { mem } from './wmm/mem.js';
import { Step, stepHook } from './step-hook.js';
import { SoftTlb } from './tlb.js';
import { TrackedWriteEmulator } from './tracked-write.js';
import { type VcpuBlock, VcpuLayout } from './vcpu-layout.js';
import type { Vm } from './vm.js';

const F = VcpuLayout.floats;
const WRITABLE = SpteBits.WRITABLE;
/** Data words after the header: each store also writes one word somewhere in the page. */
export const DATA_WORDS = PAGE_WORDS - GUEST_PAGE_HEADER_WORDS;
/**
 * The data word is the sequence number mixed with the stored value by Knuth's multiplicative
 * hash (2^32 / golden ratio), so that a stale or torn page shows in its data as well as in its
 * header.
 */
export const DATA_WORD_HASH = 0x9e3779b1;

/** What a hardware store did (`VcpuMmu.hardwareStore`). */
export const STORE_OK = 0;
/** The page is write-protected: a VM exit; the faulting slot and page are `faultSlot`, `faultPage`. */
export const STORE_FAULT = 1;
/** The gfn is in no memslot: MMIO. */
export const STORE_NO_SLOT = 2;

export class VcpuMmu {
  readonly tlb = new SoftTlb();
  /** KVM_REQ_DIRTY_RING_SOFT_FULL (vCPU-private, like the kernel's self-request): a push filled the ring past its soft limit. */
  protected softFullRequested = false;
  /** Where the last STORE_FAULT happened. */
  private faultSlot: Memslot | null = null;
  private faultPage = 0;
  // Counters, published to the vCPU's shared block with the run loop's (Vcpu.publishStats).
  protected stores = 0;
  private faults = 0;
  private spuriousFaults = 0;
  private pushes = 0;
  private lastSlot: Memslot | null = null;
  /** This vCPU's store sequence number (the WRITER_SEQ of its last page header). */
  protected seq = 0;
  private readonly trackedWrites: TrackedWriteEmulator;
  private readonly dirtyBeforeWritable: boolean;
  /** Mutant track-fault-fixes-tracked: the fault path ignores write tracking. */
  private readonly faultFixesTracked: boolean;
  /** The vCPU's shared words (its REQUESTS, for coverage of a store while a flush waits). */
  private readonly vcpuWords: Int32Array;
  /** Mutant fault-relaxed-writable (weak memory models only): cmpxchg_relaxed makes the SPTE writable. */
  private readonly relaxedWritable: boolean;

  protected constructor(
    readonly vm: Vm,
    /** The vCPU's index (the writer id in page headers). */
    readonly index: number,
    readonly ring: DirtyRing | null,
    /** Address space the vCPU's memslot lookups use: 0, or 1 while in SMM. */
    private asId: number,
    block: VcpuBlock,
  ) {
    const f64 = block.f64;
    this.vcpuWords = block.i32;
    this.dirtyBeforeWritable = vm.hasMutant(KernelMutant.DIRTY_BEFORE_WRITABLE);
    this.faultFixesTracked = vm.hasMutant(KernelMutant.TRACK_FAULT_FIXES_TRACKED);
    this.relaxedWritable = vm.hasMutant(KernelMutant.FAULT_RELAXED_WRITABLE);
    this.trackedWrites = new TrackedWriteEmulator(vm, index, (slot, page) => this.markPageDirty(slot, page));
    this.stores = f64[F.STORES]!;
    this.faults = f64[F.FAULTS]!;
    this.spuriousFaults = f64[F.SPURIOUS_FAULTS]!;
    this.pushes = f64[F.PUSHES]!;
  }

  protected publishWritePathStats(f64: Float64Array): void {
    f64[F.STORES] = this.stores;
    f64[F.FAULTS] = this.faults;
    f64[F.SPURIOUS_FAULTS] = this.spuriousFaults;
    f64[F.PUSHES] = this.pushes;
  }

  /** A TLB flush request: drop cached translations, and cached slots too after a memslot change. */
  protected flushTlb(memslotsChanged: boolean): void {
    if (memslotsChanged) this.lastSlot = null;
    this.tlb.flush();
  }

  /** Enter or leave SMM: lookups go to another address space, nothing cached stays valid. */
  protected switchAddressSpace(asId: number): void {
    this.asId = asId;
    this.flushTlb(true);
  }

  /** The address space the vCPU's lookups use now (1 while in SMM). */
  get addressSpace(): number {
    return this.asId;
  }

  /** The memslot holding `gfn` in this vCPU's address space, or null (MMIO). */
  protected resolve(gfn: number): Memslot | null {
    const last = this.lastSlot;
    if (last !== null && gfn >= last.baseGfn && gfn - last.baseGfn < last.pageCount) return last;
    const slot = this.vm.memslots.findByGfn(this.asId, gfn);
    this.lastSlot = slot;
    return slot;
  }

  /** A guest store in guest mode: TLB hit or writable SPTE → plain store; else a fault. */
  protected hardwareStore(gfn: number, value: number): number {
    let slot = this.tlb.lookup(gfn);
    let page: number;
    if (slot !== null) {
      page = this.tlb.pageOf(gfn);
    } else {
      slot = this.resolve(gfn);
      if (slot === null) return STORE_NO_SLOT;
      page = gfn - slot.baseGfn;
      if (((mem.active ? modelledSpteLoad(slot.spte, page) : Atomics.load(slot.spte, page)) & WRITABLE) === 0) {
        this.faultSlot = slot;
        this.faultPage = page;
        return STORE_FAULT;
      }
      this.tlb.insert(gfn, slot, page);
    }
    if (stepHook.active) {
      stepHook.at(Step.GUEST_STORE, gfn, value);
      if (coverage.active) noteGuestStore(slot.spte, page, this.vcpuWords);
    }
    this.writePage(slot, page, value);
    return STORE_OK;
  }

  /**
   * x86 fast_page_fault for the last STORE_FAULT: make the SPTE writable, then mark the page
   * dirty. Losing the compare-and-swap means another vCPU fixed the same fault (and logged the
   * page): a spurious fault, the instruction is simply retried.
   * Returns true when the page is write-tracked: such a fault is never fixed (the caller
   * emulates the store with `storeTracked`). The check and the compare-and-swap read the same
   * SPTE word, and adding tracking sets WRITE_TRACKED before it clears WRITABLE, so a page can
   * never become writable once tracking is in place.
   */
  protected handleWriteFault(): boolean {
    const slot = this.faultSlot!;
    const page = this.faultPage;
    this.faults++;
    const spte = slot.spte;
    const old = mem.active ? modelledSpteLoad(spte, page) : Atomics.load(spte, page);
    if ((old & WRITABLE) !== 0) {
      this.spuriousFaults++;
      return false;
    }
    if ((old & SpteBits.WRITE_TRACKED) !== 0 && !this.faultFixesTracked) return true;
    if (this.dirtyBeforeWritable) {
      // Mutant: record first, make writable second. A harvest + reset in between re-protects a
      // page that is not yet writable, then the CAS below makes it writable with no record.
      this.markPageDirty(slot, page);
      if (stepHook.active) stepHook.at(Step.FAULT_MAKE_WRITABLE, slot.baseGfn + page, 0);
      if (this.makeWritable(spte, page, old) !== old) this.spuriousFaults++;
      return false;
    }
    if (stepHook.active) stepHook.at(Step.FAULT_MAKE_WRITABLE, slot.baseGfn + page, 0);
    if (this.makeWritable(spte, page, old) !== old) {
      this.spuriousFaults++;
      return false;
    }
    if (stepHook.active) stepHook.at(Step.FAULT_MARK_DIRTY, slot.baseGfn + page, 0);
    this.markPageDirty(slot, page);
    return false;
  }

  /** The fault's compare-and-swap to writable; returns the SPTE it found (≠ `old`: another vCPU won). */
  private makeWritable(spte: Int32Array, page: number, old: number): number {
    if (mem.active) return modelledSpteMakeWritable(spte, page, old, this.relaxedWritable);
    return Atomics.compareExchange(spte, page, old, old | WRITABLE);
  }

  /** The store of the last fault, on a write-tracked page: emulated (written, marked, notified). */
  protected storeTracked(value: number): void {
    this.trackedWrites.store(this.faultSlot!, this.faultPage, value, this.nextSeq());
    this.stores++;
  }

  /** kvm_vcpu_write_guest: store, then mark dirty — on every store, whatever the SPTE says. */
  protected emulatedWrite(gfn: number, value: number, stores: number): number {
    const slot = this.resolve(gfn);
    if (slot === null) return STORE_NO_SLOT;
    const page = gfn - slot.baseGfn;
    const tracked = this.trackedWrites;
    for (let s = 0; s < stores; s++) {
      if (tracked.isTracked(slot, page)) {
        // Page write-tracking: a store to a tracked page (one write, marked, notified).
        tracked.store(slot, page, value, this.nextSeq());
        this.stores++;
        continue;
      }
      // Data first: a record published before its data could be harvested, reset and copied
      // before the data lands, and nothing would record the page again.
      const dataWord = this.writePage(slot, page, value);
      this.markPageDirty(slot, page);
      // Every emulated write goes to the page-track notifiers (emulator_write_phys).
      tracked.afterStore(slot, page, value, this.seq, dataWord);
    }
    return STORE_OK;
  }

  /**
   * The stores themselves: header (iteration, writer, sequence) and one data word. Returns the
   * data word's index in the page (page write-tracking reports it as a second write).
   * `VcpuFastPath` writes the same words by hand: the two must stay in step.
   */
  private writePage(slot: Memslot, page: number, value: number): number {
    const m = slot.mem32;
    const base = page * PAGE_WORDS;
    const seq = this.nextSeq();
    const dataWord = GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS);
    writePageHeader(m, base, value, this.index, seq);
    m[base + dataWord] = (seq ^ Math.imul(value, DATA_WORD_HASH)) >>> 0;
    this.stores++;
    return dataWord;
  }

  /** This vCPU's next store sequence number (the WRITER_SEQ of the page header). */
  private nextSeq(): number {
    return (this.seq = (this.seq + 1) >>> 0);
  }

  /** mark_page_dirty_in_slot with a running vCPU: this vCPU's ring, or the slot's bitmap. */
  private markPageDirty(slot: Memslot, page: number): void {
    if (!slot.logDirty) return;
    const ring = this.ring;
    if (ring !== null) {
      this.pushes++;
      if (coverage.active) noteRecord(slot);
      if (ring.push(slot.encodedSlot, page, 0)) {
        this.softFullRequested = true;
        if (coverage.active) hit(Edge.RING_SOFT_FULL);
      }
      return;
    }
    const bitmap = slot.bitmap;
    if (bitmap !== null && slot.hasBitmap) {
      if (stepHook.active) {
        stepHook.at(Step.BITMAP_UPDATE, slot.baseGfn + page, 0);
        if (coverage.active) noteBitmapSet(page);
      }
      setDirtyBit(bitmap, page);
      if (coverage.active) noteRecord(slot);
      this.pushes++;
    }
  }
}
