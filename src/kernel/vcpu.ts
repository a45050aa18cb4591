/**
 * The kernel side of one vCPU, running in that vCPU's thread: KVM_RUN's loop of guest entry,
 * guest instructions, VM exits and request processing (docs/PROTOCOL.md, section 7). What a
 * guest store does to memory and to the dirty log is the vCPU's write path (vcpu-mmu.ts).
 *
 * Guest entry (vcpu_enter_guest) processes requests: TLB flush and memslot updates first,
 * then the dirty-ring soft-full check (exit 31 while the ring stays soft-full — the request
 * stays armed so every re-entry exits again until userspace resets), then a kick (-EINTR).
 * Requests posted while the vCPU is in guest mode take effect at the next instruction
 * boundary, as an IPI would.
 */
import { KvmError } from '../abi/errno.js';
import { assert } from '../base/assert.js';
import { u32Arg } from './ioctl-args.js';
import { type VcpuOptions, checkVcpuOptions } from './vcpu-options.js';
import {
  EMU_EXIT_PREEMPTED,
  EMU_EXIT_TRACK_RING_FULL,
  KVM_EXIT_DIRTY_RING_FULL,
  KVM_EXIT_HLT,
  KVM_EXIT_INTR,
  KVM_EXIT_IO,
  KVM_EXIT_MMIO,
  SMM_AS_ID,
} from '../abi/constants.js';
import { NS_PER_MS, now } from '../base/clock.js';
import { type BlockGuestProgram, type GuestProgram, InsnKind, Instruction, MAX_STORE_BLOCK } from '../guest/instruction.js';
import { Edge, coverage, hit } from './coverage.js';
import { Step, stepHook } from './step-hook.js';
import { waitWhileEqual } from './sync.js';
import { type VcpuBlock, VcpuLayout, VcpuMode, VcpuRequest } from './vcpu-layout.js';
import { HitStop, VcpuFastPath } from './vcpu-fast-path.js';
import { STORE_NO_SLOT, STORE_OK } from './vcpu-mmu.js';
import type { Vm } from './vm.js';

export type { VcpuOptions } from './vcpu-options.js';

const W = VcpuLayout.words;
const F = VcpuLayout.floats;
const FLUSH_BITS = VcpuRequest.TLB_FLUSH | VcpuRequest.MEMSLOTS_UPDATED;

/**
 * Requests posted while the vCPU is in guest mode (an IPI: kick, TLB flush, memslot update) are
 * looked for every this many instruction boundaries (a power of two). That only delays their
 * delivery, as a slower IPI would: a store made through a stale TLB entry still comes before
 * the acknowledgement the flush requester waits for, so re-protection stays complete.
 */
const REQUEST_CHECK_EVERY = 16;
// The fast path executes at most one request-check interval per call, one block at most.
assert(REQUEST_CHECK_EVERY <= MAX_STORE_BLOCK, 'a request-check interval must fit in one store block');

/**
 * Every this many completed instructions KVM_RUN publishes its statistics and looks at the
 * clock for preemption: often enough for a progress display and for `preemptAfterMs` to be
 * kept within a fraction of a millisecond, rarely enough that the clock read (tens of ns)
 * costs nothing per store.
 */
const PERIODIC_CHECK_EVERY = 1024;

/** `storeBurst`: an instruction is decoded and waits to be executed (not an exit: those are ≥ 0). */
const INSN_DECODED = -1;

/**
 * One vCPU: KVM_RUN's loop here, its store fast path in VcpuFastPath, its write path (TLB,
 * faults, emulated stores, dirty marking) in VcpuMmu.
 */
export class Vcpu extends VcpuFastPath {
  readonly block: VcpuBlock;
  private readonly w: Int32Array;
  private readonly insn = new Instruction();
  /** An instruction was interrupted by an exit and will be retried. */
  private pending = false;
  /** Instructions completed since the last periodic check, in this KVM_RUN. */
  private sinceCheck = 0;
  /** Instruction boundaries crossed in this KVM_RUN (requests are checked at every 16th). */
  private boundary = 0;
  private readonly emulateAllStores: boolean;
  private readonly preemptAfterMs: number;

  // Local counters, published to the shared block at every exit and every periodic check.
  private cInstructions = 0;
  private cRingFull = 0;
  private cIntr = 0;
  private cPreempt = 0;
  private cTlbFlushes = 0;
  private runMs = 0;

  constructor(vm: Vm, index: number, options: VcpuOptions = {}) {
    const block = vm.vcpuBlock(u32Arg(index, 'vcpu'));
    checkVcpuOptions(options, vm.addressSpaces);
    super(vm, index, vm.ring(index), options.asId ?? 0, block);
    this.block = block;
    this.w = block.i32;
    this.emulateAllStores = options.emulateAllStores ?? false;
    this.preemptAfterMs = options.preemptAfterMs ?? 0;
    const f = block.f64;
    this.cInstructions = f[F.INSTRUCTIONS]!;
    this.cRingFull = f[F.RING_FULL_EXITS]!;
    this.cIntr = f[F.INTR_EXITS]!;
    this.cPreempt = f[F.PREEMPTIONS]!;
    this.cTlbFlushes = f[F.TLB_FLUSHES]!;
    this.runMs = f[F.RUN_NS]! / NS_PER_MS;
  }

  /**
   * KVM_RUN: run `program` until an exit. Returns the exit reason (KVM_EXIT_*). An interrupted
   * instruction stays pending and is retried by the next call.
   */
  run(program: GuestProgram): number {
    // The guest the emulator runs instead of real code: checked here, not as a TypeError inside the loop.
    if (typeof (program as Partial<GuestProgram> | null)?.decode !== 'function') throw new KvmError('EINVAL', 'program is not a guest program (no decode)', 'program');
    if (typeof program.peekStores !== typeof program.consumeStores) throw new KvmError('EINVAL', 'program defines one of peekStores and consumeStores without the other', 'program');
    const blocks = typeof program.peekStores === 'function';
    const t0 = now();
    const insn = this.insn;
    this.sinceCheck = 0;
    this.boundary = 0;
    let exit = this.enterGuest();
    while (exit === 0) {
      let decoded = false;
      if (!this.pending && !this.emulateAllStores && !stepHook.active) {
        exit = this.storeBurst(program, blocks, t0);
        if (exit !== INSN_DECODED) continue;
        exit = 0;
        decoded = true;
      }
      if (!decoded) {
        // Instruction boundary: a request posted while we were in guest mode (an IPI) exits here.
        if ((++this.boundary & (REQUEST_CHECK_EVERY - 1)) === 0 && Atomics.load(this.w, W.REQUESTS) !== 0) {
          this.exitGuestMode(true);
          exit = this.enterGuest();
          if (exit !== 0) break;
        }
        if (stepHook.active) stepHook.at(Step.INSN_BOUNDARY, this.index, 0);
        if (!this.pending) program.decode(insn);
      }
      if (!this.pending) {
        if (insn.kind === InsnKind.HALT) {
          exit = KVM_EXIT_HLT;
          break;
        }
        if (insn.kind === InsnKind.IDLE) {
          exit = this.idle(insn.idleMs, t0);
          continue;
        }
        this.pending = true;
      }
      if (insn.kind === InsnKind.STORE && !this.emulateAllStores) {
        const r = this.hardwareStore(insn.gfns[0]!, insn.value);
        exit = r === STORE_OK ? this.complete(insn.exitAfter, t0) : this.storeExit(r, t0);
      } else if (insn.kind === InsnKind.LOAD) {
        exit = this.load(t0);
      } else if (insn.kind === InsnKind.SMI || insn.kind === InsnKind.RSM) {
        exit = this.smmTransition(t0);
      } else {
        exit = this.emulate(t0);
      }
    }
    return this.leave(exit, t0);
  }

  /**
   * The common case — runs of stores that hit the software TLB, no step hook — through
   * VcpuFastPath (hitStoreBlock for a program with block decode, else hitStores), with the general loop's request check made at the same instruction
   * boundaries and its periodic check after the same instructions, between the runs. Returns
   * an exit, 0 to go on in the general loop, or INSN_DECODED: an instruction is decoded in
   * `insn` (its boundary already checked) and the general loop executes it.
   */
  private storeBurst(program: GuestProgram, blocks: boolean, t0: number): number {
    while (!stepHook.active) {
      const next = this.boundary + 1;
      if ((next & (REQUEST_CHECK_EVERY - 1)) === 0 && Atomics.load(this.w, W.REQUESTS) !== 0) {
        this.exitGuestMode(true);
        const exit = this.enterGuest();
        if (exit !== 0) return exit;
      }
      // Instructions `next` onwards up to the next checked boundary, and the next periodic check.
      const limit = Math.min(REQUEST_CHECK_EVERY - (next & (REQUEST_CHECK_EVERY - 1)), PERIODIC_CHECK_EVERY - this.sinceCheck);
      const done = blocks ? this.hitStoreBlock(program as BlockGuestProgram, this.insn, limit) : this.hitStores(program, this.insn, limit);
      const stop = this.hitStop;
      this.boundary += stop === HitStop.DECODED ? done + 1 : done;
      this.cInstructions += done;
      if (stop === HitStop.EXIT_AFTER) return KVM_EXIT_IO;
      if ((this.sinceCheck += done) >= PERIODIC_CHECK_EVERY) {
        this.sinceCheck = 0;
        if (this.timeToPreempt(t0)) return EMU_EXIT_PREEMPTED;
      }
      if (stop === HitStop.DECODED) return INSN_DECODED;
    }
    return 0;
  }

  /**
   * A paced guest's hlt with its timer armed: halt in the kernel, then enter the guest again.
   * A preemption point too, since a paced guest may never reach the periodic check. Returns 0
   * when the guest runs again, or the exit KVM_RUN takes instead.
   */
  private idle(ms: number, t0: number): number {
    this.exitGuestMode(false);
    this.haltInKernel(ms);
    if (this.preemptAfterMs > 0 && now() - t0 >= this.preemptAfterMs) return EMU_EXIT_PREEMPTED;
    return this.enterGuest();
  }

  /**
   * A hardware store that did not complete: MMIO outside every memslot, or an EPT violation —
   * a VM exit, the fault handler, then guest entry again and a retry of the same instruction.
   * A fault on a write-tracked page is not fixed: the store is emulated (written, marked dirty,
   * notified) and the instruction completes.
   */
  private storeExit(r: number, t0: number): number {
    if (r === STORE_NO_SLOT) {
      this.pending = false;
      return KVM_EXIT_MMIO;
    }
    this.exitGuestMode(false);
    if (this.handleWriteFault()) {
      this.storeTracked(this.insn.value);
      const done = this.complete(this.insn.exitAfter, t0);
      if (done !== 0) return done;
    }
    return this.enterGuest();
  }

  /** A load never marks a page dirty, on either path (observed); outside every memslot it is MMIO. */
  private load(t0: number): number {
    if (this.resolve(this.insn.gfns[0]!) === null) {
      this.pending = false;
      return KVM_EXIT_MMIO;
    }
    return this.complete(this.insn.exitAfter, t0);
  }

  /**
   * SMI or RSM: out of guest mode, into or out of System Management Mode — kvm_smm_changed,
   * whose kvm_mmu_reset_context drops every cached translation — and back in. A VM without
   * SMM has no address space 1: a program that sends it an SMI is wrong.
   */
  private smmTransition(t0: number): number {
    const insn = this.insn;
    const asId = insn.kind === InsnKind.SMI ? SMM_AS_ID : 0;
    if (asId >= this.vm.addressSpaces) throw new Error(`vCPU ${this.index}: an SMI, but the VM has no SMM address space`);
    this.exitGuestMode(false);
    this.switchAddressSpace(asId);
    const done = this.complete(insn.exitAfter, t0);
    if (done !== 0) return done;
    return this.enterGuest();
  }

  /**
   * An instruction emulated in the kernel: all its stores happen outside guest mode with no
   * entry between. It counts towards preemption too: a guest that only takes this path would
   * otherwise never leave KVM_RUN in a bitmap VM (nothing else makes it exit), its thread would
   * never answer control messages, and userspace would see no progress.
   */
  private emulate(t0: number): number {
    const insn = this.insn;
    this.exitGuestMode(false);
    for (let i = 0; i < insn.count; i++) {
      if (this.emulatedWrite(insn.gfns[i]!, insn.value, insn.storesPerPage) === STORE_NO_SLOT) {
        this.pending = false;
        return KVM_EXIT_MMIO;
      }
    }
    const done = this.complete(insn.exitAfter, t0);
    if (done !== 0) return done;
    return this.enterGuest();
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
    if (++this.sinceCheck >= PERIODIC_CHECK_EVERY) {
      this.sinceCheck = 0;
      if (this.timeToPreempt(t0)) return EMU_EXIT_PREEMPTED;
    }
    return 0;
  }

  /**
   * The periodic check: publish the statistics, and say whether KVM_RUN has run for
   * `preemptAfterMs` (the caller then returns EMU_EXIT_PREEMPTED).
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
        this.flushTlb((r & VcpuRequest.MEMSLOTS_UPDATED) !== 0);
        this.cTlbFlushes++;
        Atomics.and(w, W.REQUESTS, ~(r & FLUSH_BITS));
        // A flush requester may be waiting on our mode word.
        Atomics.notify(w, W.MODE);
      }
      if (this.softFullRequested) {
        // kvm_dirty_ring_check_request: still soft-full → re-arm and exit to userspace.
        if (this.ring!.isSoftFullForVcpu()) return KVM_EXIT_DIRTY_RING_FULL;
        this.softFullRequested = false;
      }
      if ((r & VcpuRequest.TRACK_RING_FULL) !== 0) {
        // Page write-tracking: this vCPU's notification ring to userspace is soft-full
        // (src/pagetrack/notification-ring.ts); userspace drains it and wakes the thread.
        Atomics.and(w, W.REQUESTS, ~VcpuRequest.TRACK_RING_FULL);
        if (coverage.active) hit(Edge.TRACK_RING_FULL_EXIT);
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

  /** Out of guest mode and back to userspace with `exit`; publishes the pending store and the statistics. */
  private leave(exit: number, t0: number): number {
    const w = this.w;
    this.exitGuestMode(false);
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
    this.publishWritePathStats(f);
    f[F.RING_FULL_EXITS] = this.cRingFull;
    f[F.INTR_EXITS] = this.cIntr;
    f[F.PREEMPTIONS] = this.cPreempt;
    f[F.TLB_FLUSHES] = this.cTlbFlushes;
    f[F.RUN_NS] = this.runMs * NS_PER_MS;
  }
}
