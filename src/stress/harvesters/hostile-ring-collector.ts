/**
 * A hostile ring harvester: userspace owns the ring mapping and may write anything into it.
 * In each final collection of an iteration (every vCPU parked), after harvesting, it rewrites
 * the last two harvested entries of one ring to the pair (slot, 2^64 − 63), (slot, 0) before
 * KVM_RESET_DIRTY_RINGS. The reset coalesces them into one batch whose offset plus highest bit
 * wraps to 0: the fixed kernel (577a8d3bae05) skips the batch because its offset is out of
 * range, the pre-2026 check (`reset-wrap-check` mutant) lets it through and indexes the rmap
 * out of bounds, which the emulator counts as a kernel bug.
 *
 * The two entries it destroyed named real pages that the reset therefore never re-protects.
 * The only tool userspace has to re-arm logging is the memslot flag, so after such a reset it
 * turns LOG_DIRTY_PAGES off and on again on every data slot (which write-protects every page)
 * — safe only because no vCPU runs during a final collection. With that, a correct kernel
 * loses nothing to this userspace.
 */
import { KVM_DIRTY_GFN_F_RESET } from '../../abi/constants.js';
import { DIRTY_GFN_WORDS, DirtyGfnWords, type RingViews } from '../../abi/dirty-gfn.js';
import { type HarvestCursor, harvestRing, writeRawEntry } from '../../kernel/dirty-ring.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { UserspaceFaults } from '../../userspace/faults.js';
import type { Vm } from '../../kernel/vm.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, emptyCollectorStats } from '../../userspace/log-collectors.js';
import { PendingEntries } from '../../userspace/pending-entries.js';

/** 2^64 − 63: with 0 right after it, `offset + 63` wraps to 0. */
export const WRAPPED_OFFSET = 0xffff_ffff_ffff_ffc1n;

export class HostileRingCollector implements LogCollector {
  readonly mode = 'ring' as const;
  readonly stats: CollectorStats = emptyCollectorStats();
  /** Resets that carried a rewritten (wrapped) pair. */
  rewrites = 0;
  private readonly rings: RingViews[] = [];
  private readonly cursors: HarvestCursor[] = [];
  /** Entries harvested this collection, held until the reset returns. */
  private readonly pending: PendingEntries;
  /** The final collection is stopped only when the run really parks the vCPUs first. */
  private readonly finalIsStopped: boolean;
  private readonly ordering: number;

  constructor(
    readonly vm: Vm,
    readonly vcpuCount: number,
    private readonly slots: readonly Memslot[],
    faults: UserspaceFaults,
    /** The rings' first free-running index (Vm.presetRingIndex). */
    ringStart = 0,
  ) {
    if (vm.ringWithBitmap) throw new Error('the hostile-wrap harvester does not model ring-with-bitmap');
    for (let i = 0; i < vcpuCount; i++) {
      this.rings.push(vm.mmapRing(i));
      this.cursors.push({ fetchIndex: ringStart >>> 0 });
    }
    this.pending = new PendingEntries(vm.ringEntries * vcpuCount);
    this.finalIsStopped = !faults.noFinalStop;
    this.ordering = faults.harvestOrdering;
  }

  collect(sink: ReadyPageSink, final: boolean): number {
    this.pending.clear();
    let rewrittenRing = -1;
    for (let i = 0; i < this.vcpuCount; i++) {
      const h = harvestRing(this.rings[i]!, this.cursors[i]!, Number.MAX_SAFE_INTEGER, this.pending.push, KVM_DIRTY_GFN_F_RESET, this.ordering);
      if (h >= 2 && rewrittenRing < 0) rewrittenRing = i;
    }
    const harvested = this.pending.count;
    if (final && this.finalIsStopped && rewrittenRing >= 0) {
      const ring = this.rings[rewrittenRing]!;
      const last = this.cursors[rewrittenRing]!.fetchIndex;
      // Both name the first entry's slot: one batch coalesces only entries of one slot, and the
      // slot must exist for the batch to reach the range check.
      const slot = ring.u32[(((last - 2) >>> 0) & (ring.entryCount - 1)) * DIRTY_GFN_WORDS + DirtyGfnWords.SLOT]!;
      writeRawEntry(ring, last - 2, KVM_DIRTY_GFN_F_RESET, slot, WRAPPED_OFFSET);
      writeRawEntry(ring, last - 1, KVM_DIRTY_GFN_F_RESET, slot, 0n);
    } else {
      rewrittenRing = -1;
    }
    if (harvested > 0) {
      const reset = this.vm.resetDirtyRings();
      this.stats.resetCalls++;
      this.stats.entriesReset += reset;
      if (reset !== harvested) this.stats.resetMismatches++;
    }
    if (rewrittenRing >= 0) {
      this.rewrites++;
      // Re-arm logging for the pages the destroyed entries named: toggle the log flag.
      for (const slot of this.slots) {
        this.vm.setLogDirty(slot.id, false, slot.asId);
        this.vm.setLogDirty(slot.id, true, slot.asId);
      }
    }
    this.pending.emit(sink);
    this.stats.records += harvested;
    this.stats.collections++;
    return harvested;
  }
}
