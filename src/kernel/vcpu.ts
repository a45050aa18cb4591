/**
 * The kernel side of one vCPU, running in that vCPU's thread: KVM_RUN's loop of guest entry,
 * guest instructions, VM exits and request processing, with x86's write path.
 *
 * Write path (kvm-dirty-tracking.md §2, §4):
 *  - a store to a page the TLB or SPTE says is writable is a plain store, nothing is logged;
 *  - a store to a write-protected page faults (a VM exit). The fast-fault path makes the SPTE
 *    writable with a compare-and-swap *and then* marks the page dirty (pushes to this vCPU's
 *    ring, or sets the bitmap bit). The instruction is retried after re-entry; if an exit
 *    intervenes (ring full, kick), it stays pending with the value it had loaded.
 *  - one entry per page until that entry is reset: later stores find the page writable.
 *
 * Guest entry (vcpu_enter_guest) processes requests: TLB flush and memslot updates first,
 * then the dirty-ring soft-full check (exit 31 while the ring stays soft-full — the request
 * stays armed so every re-entry exits again until userspace resets), then a kick (-EINTR).
 * Requests posted while the vCPU is in guest mode take effect at the next instruction
 * boundary, as an IPI would.
 */
import {
  EMU_EXIT_PREEMPTED,
  EMU_EXIT_TRACK_RING_FULL,
  KVM_EXIT_DIRTY_RING_FULL,
  KVM_EXIT_HLT,
  KVM_EXIT_INTR,
  KVM_EXIT_IO,
  KVM_EXIT_MMIO,
  PAGE_WORDS,
} from '../abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, writePageHeader } from '../guest/guest-memory.js';
import { SpteBits } from './memslot-layout.js';
import { type VcpuBlock, VcpuLayout, VcpuMode, VcpuRequest } from './vcpu-layout.js';
import { type GuestProgram, InsnKind, Instruction } from '../guest/instruction.js';
import { setDirtyBit } from './dirty-bitmap.js';
import type { DirtyRing } from './dirty-ring.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { Step, stepHook } from './step-hook.js';
import { now } from '../base/clock.js';
import { waitWhileEqual } from './sync.js';
import { SoftTlb } from './tlb.js';
import { TrackedWriteEmulator } from './tracked-write.js';
import type { Vm } from './vm.js';

const W = VcpuLayout.words;
const F = VcpuLayout.floats;
const WRITABLE = SpteBits.WRITABLE;
const FLUSH_BITS = VcpuRequest.TLB_FLUSH | VcpuRequest.MEMSLOTS_UPDATED;
/** Data words after the header: each store also writes one word somewhere in the page. */
const DATA_WORDS = PAGE_WORDS - GUEST_PAGE_HEADER_WORDS;

/**
 * Requests posted while the vCPU is in guest mode (an IPI: kick, TLB flush, memslot update) are
 * looked for every this many instruction boundaries (a power of two). That only delays their
 * delivery, as a slower IPI would: a store made through a stale TLB entry still comes before
 * the acknowledgement the flush requester waits for, so re-protection stays complete.
 */
const REQUEST_CHECK_EVERY = 16;

const STORE_OK = 0;
const STORE_FAULT = 1;
const STORE_NO_SLOT = 2;

export interface VcpuOptions {
  /**
   * Log every store as KVM's instruction emulator does (kvm_vcpu_write_guest): the path of a
   * host that emulates the guest, like this machine's PVM. Default: the hardware fault path.
   */
  readonly emulateAllStores?: boolean;
  /**
   * Return EMU_EXIT_PREEMPTED after this many ms inside KVM_RUN, so the thread can service
   * its message port; 0 never preempts.
   */
  readonly preemptAfterMs?: number;
  /** Address space the guest runs in (0; 1 would be SMM). */
  readonly asId?: number;
}

export class Vcpu {
  readonly block: VcpuBlock;
  readonly ring: DirtyRing | null;
  readonly tlb = new SoftTlb();
  private readonly w: Int32Array;
  private readonly insn = new Instruction();
  /** An instruction was interrupted by an exit and will be retried. */
  private pending = false;
  /** KVM_REQ_DIRTY_RING_SOFT_FULL (vCPU-private, like the kernel's self-request). */
  private softFullRequested = false;
  private lastSlot: Memslot | null = null;
  private faultSlot: Memslot | null = null;
  private faultPage = 0;
  private seq = 0;
  /** Instructions completed since the last preemption check, in this KVM_RUN. */
  private sinceCheck = 0;
  private readonly emulateAllStores: boolean;
  private readonly preemptAfterMs: number;
  private readonly asId: number;
  private readonly dirtyBeforeWritable: boolean;
  /** Page write-tracking (issue 4): stores to write-tracked pages are emulated and notified. */
  private readonly trackedWrites: TrackedWriteEmulator;
  /** Mutant track-fault-fixes-tracked: the fault path ignores write tracking. */
  private readonly faultFixesTracked: boolean;

  // Local counters, published to the shared block at every exit and every 1024 instructions.
  private cInstructions = 0;
  private cStores = 0;
  private cFaults = 0;
  private cSpurious = 0;
  private cPushes = 0;
  private cRingFull = 0;
  private cIntr = 0;
  private cPreempt = 0;
  private cTlbFlushes = 0;
  private runMs = 0;

  constructor(
    readonly vm: Vm,
    readonly index: number,
    options: VcpuOptions = {},
  ) {
    this.block = vm.vcpuBlock(index);
    this.w = this.block.i32;
    this.ring = vm.ring(index);
    this.emulateAllStores = options.emulateAllStores ?? false;
    this.preemptAfterMs = options.preemptAfterMs ?? 0;
    this.asId = options.asId ?? 0;
    this.dirtyBeforeWritable = vm.hasMutant(KernelMutant.DIRTY_BEFORE_WRITABLE);
    this.trackedWrites = new TrackedWriteEmulator(vm, index, (slot, page) => this.markPageDirty(slot, page));
    this.faultFixesTracked = vm.hasMutant(KernelMutant.TRACK_FAULT_FIXES_TRACKED);
    const f = this.block.f64;
    this.cInstructions = f[F.INSTRUCTIONS]!;
    this.cStores = f[F.STORES]!;
    this.cFaults = f[F.FAULTS]!;
    this.cSpurious = f[F.SPURIOUS_FAULTS]!;
    this.cPushes = f[F.PUSHES]!;
    this.cRingFull = f[F.RING_FULL_EXITS]!;
    this.cIntr = f[F.INTR_EXITS]!;
    this.cPreempt = f[F.PREEMPTIONS]!;
    this.cTlbFlushes = f[F.TLB_FLUSHES]!;
    this.runMs = f[F.RUN_NS]! / 1e6;
  }

  /**
   * KVM_RUN: run `program` until an exit. Returns the exit reason (KVM_EXIT_*). An interrupted
   * instruction stays pending and is retried by the next call.
   */
  run(program: GuestProgram): number {
    const t0 = now();
    let exit = this.enterGuest();
    if (exit !== 0) return this.leave(exit, t0);
    const insn = this.insn;
    const w = this.w;
    this.sinceCheck = 0;
    let boundary = 0;
    for (;;) {
      // Instruction boundary: a request posted while we were in guest mode (an IPI) exits here.
      if ((++boundary & (REQUEST_CHECK_EVERY - 1)) === 0 && Atomics.load(w, W.REQUESTS) !== 0) {
        this.exitGuestMode(true);
        exit = this.enterGuest();
        if (exit !== 0) return this.leave(exit, t0);
      }
      if (stepHook.active) stepHook.at(Step.INSN_BOUNDARY, this.index, 0);
      if (!this.pending) {
        program.decode(insn);
        if (insn.kind === InsnKind.HALT) {
          this.exitGuestMode(false);
          return this.leave(KVM_EXIT_HLT, t0);
        }
        if (insn.kind === InsnKind.IDLE) {
          // A paced guest's hlt with its timer armed: halt in the kernel, then re-enter. A
          // preemption point too, since a paced guest may never reach the 1024-insn check.
          this.exitGuestMode(false);
          this.haltInKernel(insn.idleMs);
          if (this.preemptAfterMs > 0 && now() - t0 >= this.preemptAfterMs) return this.leave(EMU_EXIT_PREEMPTED, t0);
          exit = this.enterGuest();
          if (exit !== 0) return this.leave(exit, t0);
          continue;
        }
        this.pending = true;
      }

      if (insn.kind === InsnKind.LOAD) {
        // A load never marks a page dirty, on either path (fidelity, issue 7: kvm-observed
        // row 3 "Loads → 0 entries"). Outside every memslot it is MMIO, like a store.
        if (this.resolve(insn.gfns[0]!) === null) {
          this.pending = false;
          this.exitGuestMode(false);
          return this.leave(KVM_EXIT_MMIO, t0);
        }
      } else if (insn.kind === InsnKind.STORE && !this.emulateAllStores) {
        const r = this.hardwareStore(insn.gfns[0]!, insn.value);
        if (r === STORE_FAULT) {
          // EPT violation: a VM exit, the fault handler, then guest entry again.
          this.exitGuestMode(false);
          if (this.handleWriteFault(this.faultSlot!, this.faultPage)) {
            // Page write-tracking: the fault on a tracked page is not fixed; the store is
            // emulated (written, marked dirty, notified) and the instruction completes.
            this.trackedWrites.store(this.faultSlot!, this.faultPage, insn.value, this.nextSeq());
            this.cStores++;
            const done = this.complete(insn.exitAfter, t0);
            if (done !== 0) return this.leave(done, t0);
          }
          exit = this.enterGuest();
          if (exit !== 0) return this.leave(exit, t0);
          continue; // retry the same instruction (the next one after an emulated store)
        }
        if (r === STORE_NO_SLOT) {
          this.pending = false;
          this.exitGuestMode(false);
          return this.leave(KVM_EXIT_MMIO, t0);
        }
      } else {
        // Emulated in the kernel: all stores happen outside guest mode with no entry between.
        this.exitGuestMode(false);
        for (let i = 0; i < insn.count; i++) {
          if (this.emulatedWrite(insn.gfns[i]!, insn.value, insn.storesPerPage) === STORE_NO_SLOT) {
            this.pending = false;
            return this.leave(KVM_EXIT_MMIO, t0);
          }
        }
        // Emulated instructions count towards preemption too: a guest that only takes this
        // path would otherwise never leave KVM_RUN in a bitmap VM (nothing else makes it exit),
        // its thread would never answer control messages, and userspace would see no progress
        // (found by the stress harness, issue 6).
        const done = this.complete(insn.exitAfter, t0);
        if (done !== 0) return this.leave(done, t0);
        exit = this.enterGuest();
        if (exit !== 0) return this.leave(exit, t0);
        continue;
      }

      const done = this.complete(insn.exitAfter, t0);
      if (done !== 0) {
        this.exitGuestMode(false);
        return this.leave(done, t0);
      }
    }
  }

  /**
   * An instruction completed: count it, and return the exit KVM_RUN must take now — KVM_EXIT_IO
   * after a ucall, EMU_EXIT_PREEMPTED when its time is up — or 0 to go on. Every path that
   * completes an instruction goes through here, so that each counts towards preemption.
   */
  private complete(exitAfter: boolean, t0: number): number {
    this.pending = false;
    this.cInstructions++;
    if (exitAfter) return KVM_EXIT_IO;
    if (++this.sinceCheck >= 1024) {
      this.sinceCheck = 0;
      if (this.timeToPreempt(t0)) return EMU_EXIT_PREEMPTED;
    }
    return 0;
  }

  /**
   * Every 1024 completed instructions: publish the statistics, and say whether KVM_RUN has
   * run for `preemptAfterMs` (the caller then returns EMU_EXIT_PREEMPTED).
   */
  private timeToPreempt(t0: number): boolean {
    this.publishStats();
    return this.preemptAfterMs > 0 && now() - t0 >= this.preemptAfterMs;
  }

  /** Whether an interrupted instruction waits to be retried. */
  get hasPendingInstruction(): boolean {
    return this.pending;
  }

  // ------------------------------------------------------------------------------------------
  // Guest entry and exit

  /**
   * vcpu_enter_guest's request processing, then IN_GUEST_MODE. Returns 0 when the vCPU is in
   * guest mode, or the exit reason that KVM_RUN returns instead.
   */
  private enterGuest(): number {
    const w = this.w;
    for (;;) {
      if (stepHook.active) stepHook.at(Step.GUEST_ENTRY, this.index, 0);
      const r = Atomics.load(w, W.REQUESTS);
      if ((r & FLUSH_BITS) !== 0) {
        if ((r & VcpuRequest.MEMSLOTS_UPDATED) !== 0) this.lastSlot = null;
        this.tlb.flush();
        this.cTlbFlushes++;
        Atomics.and(w, W.REQUESTS, ~(r & FLUSH_BITS));
        // A flush requester may be waiting on our mode word.
        Atomics.notify(w, W.MODE);
      }
      if (this.softFullRequested) {
        // kvm_dirty_ring_check_request: still soft-full → re-arm and exit to userspace.
        if (this.ring!.isSoftFull()) return KVM_EXIT_DIRTY_RING_FULL;
        this.softFullRequested = false;
      }
      if ((r & VcpuRequest.TRACK_RING_FULL) !== 0) {
        // Page write-tracking: this vCPU's notification ring to userspace is soft-full
        // (src/pagetrack/notification-ring.ts); userspace drains it and wakes the thread.
        Atomics.and(w, W.REQUESTS, ~VcpuRequest.TRACK_RING_FULL);
        return EMU_EXIT_TRACK_RING_FULL;
      }
      if ((r & VcpuRequest.KICK) !== 0) {
        Atomics.and(w, W.REQUESTS, ~VcpuRequest.KICK);
        return KVM_EXIT_INTR;
      }
      Atomics.store(w, W.MODE, VcpuMode.IN_GUEST);
      // Pairs with the requester's "post bit, then read mode": one of us sees the other.
      if (Atomics.load(w, W.REQUESTS) === 0) return 0;
      Atomics.store(w, W.MODE, VcpuMode.OUTSIDE_GUEST);
    }
  }

  /**
   * kvm_vcpu_halt: block outside guest mode until the guest's timer (`ms`) fires or a request
   * is posted. Kicks wake it at once (Vm.kickVcpu notifies the REQUESTS word); other requests
   * (a TLB flush) need no wake-up: the vCPU is outside guest mode, so it handles them on entry.
   */
  private haltInKernel(ms: number): void {
    if (ms > 0) waitWhileEqual(this.w, W.REQUESTS, 0, ms);
  }

  private exitGuestMode(notify: boolean): void {
    Atomics.store(this.w, W.MODE, VcpuMode.OUTSIDE_GUEST);
    if (notify) Atomics.notify(this.w, W.MODE);
  }

  private leave(exit: number, t0: number): number {
    const w = this.w;
    if (exit === KVM_EXIT_DIRTY_RING_FULL) this.cRingFull++;
    else if (exit === KVM_EXIT_INTR) this.cIntr++;
    else if (exit === EMU_EXIT_PREEMPTED) this.cPreempt++;
    this.runMs += now() - t0;
    const insn = this.insn;
    if (this.pending && insn.kind === InsnKind.STORE) {
      this.block.f64[F.PENDING_GFN] = insn.gfns[0]!;
      Atomics.store(w, W.PENDING_VALUE, insn.value | 0);
      Atomics.store(w, W.PENDING_VALID, 1);
    } else {
      Atomics.store(w, W.PENDING_VALID, 0);
    }
    this.publishStats();
    Atomics.store(w, W.EXIT_REASON, exit);
    return exit;
  }

  publishStats(): void {
    const f = this.block.f64;
    f[F.INSTRUCTIONS] = this.cInstructions;
    f[F.STORES] = this.cStores;
    f[F.FAULTS] = this.cFaults;
    f[F.SPURIOUS_FAULTS] = this.cSpurious;
    f[F.PUSHES] = this.cPushes;
    f[F.RING_FULL_EXITS] = this.cRingFull;
    f[F.INTR_EXITS] = this.cIntr;
    f[F.PREEMPTIONS] = this.cPreempt;
    f[F.TLB_FLUSHES] = this.cTlbFlushes;
    f[F.RUN_NS] = this.runMs * 1e6;
  }

  // ------------------------------------------------------------------------------------------
  // The write path

  private resolve(gfn: number): Memslot | null {
    const last = this.lastSlot;
    if (last !== null && gfn >= last.baseGfn && gfn - last.baseGfn < last.pageCount) return last;
    const slot = this.vm.memslots.findByGfn(this.asId, gfn);
    this.lastSlot = slot;
    return slot;
  }

  /** A guest store in guest mode: TLB hit or writable SPTE → plain store; else a fault. */
  private hardwareStore(gfn: number, value: number): number {
    let slot = this.tlb.lookup(gfn);
    let page: number;
    if (slot !== null) {
      page = this.tlb.pageOf(gfn);
    } else {
      slot = this.resolve(gfn);
      if (slot === null) return STORE_NO_SLOT;
      page = gfn - slot.baseGfn;
      if ((Atomics.load(slot.spte, page) & WRITABLE) === 0) {
        this.faultSlot = slot;
        this.faultPage = page;
        return STORE_FAULT;
      }
      this.tlb.insert(gfn, slot, page);
    }
    if (stepHook.active) stepHook.at(Step.GUEST_STORE, gfn, value);
    this.writePage(slot, page, value);
    return STORE_OK;
  }

  /**
   * The stores themselves: header (iteration, writer, sequence) and one data word. Returns the
   * data word's index in the page (page write-tracking reports it as a second write).
   */
  private writePage(slot: Memslot, page: number, value: number): number {
    const m = slot.mem32;
    const base = page * PAGE_WORDS;
    const seq = this.nextSeq();
    const dataWord = GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS);
    writePageHeader(m, base, value, this.index, seq);
    m[base + dataWord] = (seq ^ Math.imul(value, 0x9e3779b1)) >>> 0;
    this.cStores++;
    return dataWord;
  }

  /** This vCPU's next store sequence number (the WRITER_SEQ of the page header). */
  private nextSeq(): number {
    return (this.seq = (this.seq + 1) >>> 0);
  }

  /**
   * x86 fast_page_fault for a write to a write-protected page: make the SPTE writable, then
   * mark the page dirty. Losing the compare-and-swap means another vCPU fixed the same fault
   * (and logged the page): a spurious fault, the instruction is simply retried.
   * Returns true when the page is write-tracked: such a fault is never fixed (the caller
   * emulates the store). The check and the compare-and-swap read the same SPTE word, and
   * adding tracking sets WRITE_TRACKED before it clears WRITABLE, so a page can never become
   * writable once tracking is in place.
   */
  private handleWriteFault(slot: Memslot, page: number): boolean {
    this.cFaults++;
    const spte = slot.spte;
    const old = Atomics.load(spte, page);
    if ((old & WRITABLE) !== 0) {
      this.cSpurious++;
      return false;
    }
    if ((old & SpteBits.WRITE_TRACKED) !== 0 && !this.faultFixesTracked) return true;
    if (this.dirtyBeforeWritable) {
      // Mutant: record first, make writable second. A harvest + reset in between re-protects a
      // page that is not yet writable, then the CAS below makes it writable with no record.
      this.markPageDirty(slot, page);
      if (stepHook.active) stepHook.at(Step.FAULT_MAKE_WRITABLE, slot.baseGfn + page, 0);
      if (Atomics.compareExchange(spte, page, old, old | WRITABLE) !== old) this.cSpurious++;
      return false;
    }
    if (stepHook.active) stepHook.at(Step.FAULT_MAKE_WRITABLE, slot.baseGfn + page, 0);
    if (Atomics.compareExchange(spte, page, old, old | WRITABLE) !== old) {
      this.cSpurious++;
      return false;
    }
    if (stepHook.active) stepHook.at(Step.FAULT_MARK_DIRTY, slot.baseGfn + page, 0);
    this.markPageDirty(slot, page);
    return false;
  }

  /** kvm_vcpu_write_guest: store, then mark dirty — on every store, whatever the SPTE says. */
  private emulatedWrite(gfn: number, value: number, stores: number): number {
    const slot = this.resolve(gfn);
    if (slot === null) return STORE_NO_SLOT;
    const page = gfn - slot.baseGfn;
    const tracked = this.trackedWrites;
    for (let s = 0; s < stores; s++) {
      if (tracked.isTracked(slot, page)) {
        // Page write-tracking: a store to a tracked page (one write, marked, notified).
        tracked.store(slot, page, value, this.nextSeq());
        this.cStores++;
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

  /** mark_page_dirty_in_slot with a running vCPU: this vCPU's ring, or the slot's bitmap. */
  private markPageDirty(slot: Memslot, page: number): void {
    if (!slot.logDirty) return;
    const ring = this.ring;
    if (ring !== null) {
      this.cPushes++;
      if (ring.push(slot.encodedSlot, page, 0)) this.softFullRequested = true;
      return;
    }
    const bitmap = slot.bitmap;
    if (bitmap !== null && slot.hasBitmap) {
      if (stepHook.active) stepHook.at(Step.BITMAP_UPDATE, slot.baseGfn + page, 0);
      setDirtyBit(bitmap, page);
      this.cPushes++;
    }
  }
}
