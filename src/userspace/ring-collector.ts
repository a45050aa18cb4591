/**
 * Userspace's dirty-ring collector (QEMU's kvm_dirty_ring_reap, dirty_log_test's collector):
 * harvest every vCPU's ring strictly in order, then KVM_RESET_DIRTY_RINGS, and check that the
 * reset consumed exactly what was harvested. Pages may be read only after the reset returns:
 * that is when they are write-protected again and no vCPU holds a stale writable TLB entry.
 */
import { type RingViews } from '../abi/dirty-gfn.js';
import { type HarvestCursor, HarvestOrdering, type HarvestSink, harvestRing } from '../kernel/dirty-ring.js';
import { KVM_DIRTY_GFN_F_RESET } from '../abi/constants.js';
import type { Vm } from '../kernel/vm.js';

/** Receives one harvested entry, with the vCPU whose ring held it. */
export type CollectSink = (vcpu: number, slot: number, offLo: number, offHi: number) => void;

export interface ResetMismatch {
  readonly harvested: number;
  readonly reset: number;
}

export interface RingCollectorOptions {
  /**
   * Mutant `harvest-skips-entry`: drop every Nth harvested entry without recording it (it is
   * still marked RESET, so the kernel re-protects the page and nobody knows it was dirty).
   */
  readonly skipEveryNth?: number;
  /** Every ring's first free-running index (0, unless the VM preset it: Vm.presetRingIndex). */
  readonly startIndex?: number;
  /** The harvest's orderings (HarvestOrdering): a pre-2022 harvester's plain accesses to flags. */
  readonly ordering?: number;
}

export class RingCollector {
  private readonly rings: RingViews[] = [];
  private readonly cursors: HarvestCursor[] = [];
  private readonly sinks: HarvestSink[] = [];
  private sink: CollectSink = () => {};
  private entrySink: HarvestSink = () => {};
  private readonly dropVcpu: CollectSink = (_vcpu, slot, offLo, offHi) => this.entrySink(slot, offLo, offHi);
  private readonly skipEveryNth: number;
  private readonly ordering: number;
  private seen = 0;
  harvestedTotal = 0;
  resetCalls = 0;
  entriesResetTotal = 0;
  skippedByMutant = 0;
  readonly mismatches: ResetMismatch[] = [];

  constructor(
    readonly vm: Vm,
    readonly vcpuCount: number,
    options: RingCollectorOptions = {},
  ) {
    this.skipEveryNth = options.skipEveryNth ?? 0;
    this.ordering = options.ordering ?? HarvestOrdering.ACQ_REL;
    for (let i = 0; i < vcpuCount; i++) {
      this.rings.push(vm.mmapRing(i));
      this.cursors.push({ fetchIndex: (options.startIndex ?? 0) >>> 0 });
      // One closure per ring, made once: the harvest loop itself allocates nothing.
      this.sinks.push((slot, offLo, offHi) => {
        if (this.skipEveryNth > 0 && ++this.seen % this.skipEveryNth === 0) {
          this.skippedByMutant++;
          return;
        }
        this.sink(i, slot, offLo, offHi);
      });
    }
  }

  /** The next free-running index the harvest loop reads in vCPU i's ring. */
  fetchIndex(vcpu: number): number {
    return this.cursors[vcpu]?.fetchIndex ?? 0;
  }

  /** Harvest all rings into `sink` without resetting; returns the number of entries. */
  harvest(sink: CollectSink, maxPerRing = Number.MAX_SAFE_INTEGER): number {
    this.sink = sink;
    let n = 0;
    for (let i = 0; i < this.vcpuCount; i++) {
      n += harvestRing(this.rings[i]!, this.cursors[i]!, maxPerRing, this.sinks[i]!, KVM_DIRTY_GFN_F_RESET, this.ordering);
    }
    this.harvestedTotal += n;
    return n;
  }

  /**
   * Harvest all rings into `sink`, which needs no vCPU number, without resetting; returns the
   * number of entries. Without the skip mutant `sink` goes straight to harvestRing: one call per
   * entry instead of three.
   */
  harvestEntries(sink: HarvestSink): number {
    if (this.skipEveryNth > 0) {
      this.entrySink = sink;
      return this.harvest(this.dropVcpu);
    }
    let n = 0;
    for (let i = 0; i < this.vcpuCount; i++) {
      n += harvestRing(this.rings[i]!, this.cursors[i]!, Number.MAX_SAFE_INTEGER, sink, KVM_DIRTY_GFN_F_RESET, this.ordering);
    }
    this.harvestedTotal += n;
    return n;
  }

  /** KVM_RESET_DIRTY_RINGS, checking the count against `harvested`. */
  reset(harvested: number): number {
    const reset = this.vm.resetDirtyRings();
    this.resetCalls++;
    this.entriesResetTotal += reset;
    if (reset !== harvested) this.mismatches.push({ harvested, reset });
    return reset;
  }

  /** Harvest everything, then reset when anything was harvested (as QEMU does). */
  collect(sink: CollectSink): number {
    const n = this.harvest(sink);
    if (n > 0) this.reset(n);
    return n;
  }
}
