/**
 * Ring collection with the reset on another thread (ResetThreadClient): harvest every ring,
 * ask the reset thread for KVM_RESET_DIRTY_RINGS, and harvest again while it runs — marking
 * RESET on entries the walk may or may not reach. Then wait for the reset.
 *
 * A page may be read only once a reset that started after its entry was marked RESET has
 * returned. The first harvest's entries qualify when this collection's reset returns; those of
 * the second harvest are held until the next collection's reset has returned (the final
 * collection of an iteration, with every vCPU parked, harvests nothing the second time, so
 * nothing is held past it). For the same reason the resets' counts add up to the harvests'
 * only once nothing is held: that is when they are compared.
 */
import { PendingEntries } from '../../userspace/pending-entries.js';
import { HARVEST_SKIP_PERIOD, type UserspaceFaults } from '../../userspace/faults.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, emptyCollectorStats } from '../../userspace/log-collectors.js';
import { RingCollector } from '../../userspace/ring-collector.js';
import type { Vm } from '../../kernel/vm.js';
import { ControlStep } from './control-steps.js';
import type { ResetThreadClient } from './reset-thread.js';
import type { Park } from './vcpu-participant.js';

export class ThreadResetRingCollector implements LogCollector {
  readonly mode = 'ring' as const;
  readonly stats: CollectorStats = emptyCollectorStats();
  private readonly ring: RingCollector;
  /** Entries marked RESET during the last collection's reset: safe after this collection's. */
  private held: PendingEntries;
  private fresh: PendingEntries;
  private late: PendingEntries;
  private readonly copyBeforeReset: boolean;
  private harvested = 0;
  private reset = 0;

  constructor(
    vm: Vm,
    vcpus: number,
    faults: UserspaceFaults,
    private readonly resets: ResetThreadClient,
    private readonly park: Park,
    /** The rings' first free-running index (Vm.presetRingIndex). */
    ringStart = 0,
  ) {
    if (vm.ringWithBitmap) throw new Error('a reset thread does not model ring-with-bitmap');
    this.ring = new RingCollector(vm, vcpus, {
      skipEveryNth: faults.harvestSkipsEntry ? HARVEST_SKIP_PERIOD : 0,
      ordering: faults.harvestOrdering,
      startIndex: ringStart,
    });
    const capacity = vm.ringEntries * vcpus;
    this.held = new PendingEntries(capacity);
    this.fresh = new PendingEntries(capacity);
    this.late = new PendingEntries(capacity);
    this.copyBeforeReset = faults.copyBeforeReset;
  }

  collect(sink: ReadyPageSink): number {
    this.fresh.clear();
    this.late.clear();
    const a = this.ring.harvestEntries(this.fresh.push);
    this.stats.collections++;
    if (a === 0 && this.held.count === 0) return 0;
    const ticket = this.resets.request();
    this.park(ControlStep.USER_HARVEST_AGAIN, ticket, 0);
    const b = this.ring.harvestEntries(this.late.push);
    if (this.copyBeforeReset) this.emit(sink); // the fault: pages read before their reset returned
    const n = this.resets.wait(ticket);
    if (!this.copyBeforeReset) this.emit(sink);
    const emitted = this.held.count + this.fresh.count;
    this.harvested += a + b;
    this.reset += n;
    this.stats.resetCalls++;
    this.stats.entriesReset += n;
    this.stats.records += emitted;
    if (b === 0 && this.reset !== this.harvested) {
      this.stats.resetMismatches++;
      this.reset = this.harvested;
    }
    // The late entries wait for the next collection's reset.
    [this.held, this.late] = [this.late, this.held];
    return emitted;
  }

  private emit(sink: ReadyPageSink): void {
    this.held.emit(sink);
    this.fresh.emit(sink);
  }
}
