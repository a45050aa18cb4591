/**
 * Userspace's side of a user harvester on threads of its own in a controlled run: a collection
 * is a request every harvester thread serves (harvester-thread-participant.ts); userspace parks
 * until all have served it, then hands their reports to the oracle (their pages were copied
 * when reported) and checks the counts, as the free runs' ThreadedHarvesterCollector does.
 */
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import type { HarvesterDefinition } from '../../harvester/contract.js';
import { REPORT_WORDS } from '../../harvester/thread-layout.js';
import { HarvesterRunError, type UserHarvesterStats } from '../../harvester/user-collector.js';
import type { DirtyPageCopier } from '../../userspace/dirty-copier.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, SlotBitmaps, collectLegacyBitmaps, emptyCollectorStats } from '../../userspace/log-collectors.js';
import { ControlStep } from './control-steps.js';
import type { HarvesterRunBuffers } from './harvester-run-buffers.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';
import type { Park } from './vcpu-participant.js';

const S = UserspaceSharedLayout.words;

export class ControlledThreadedCollector implements LogCollector {
  readonly mode;
  readonly stats: CollectorStats = emptyCollectorStats();
  readonly user: UserHarvesterStats = { ioctlErrors: 0, firstIoctlError: null };
  private readonly reports: Uint32Array[];
  private readonly deviceBitmaps = new SlotBitmaps();
  private copier: DirtyPageCopier | null = null;
  private oracle: ReadyPageSink = () => {};
  private requests = 0;

  constructor(
    definition: HarvesterDefinition,
    private readonly threads: number,
    private readonly vm: Vm,
    private readonly slots: readonly Memslot[],
    private readonly shared: Int32Array,
    private readonly park: Park,
    buffers: HarvesterRunBuffers,
  ) {
    this.mode = definition.log;
    this.reports = buffers.reports.map((b) => new Uint32Array(b));
  }

  copyOnReport(copier: DirtyPageCopier, oracle: ReadyPageSink): void {
    this.copier = copier;
    this.oracle = oracle;
  }

  collect(sink: ReadyPageSink, final: boolean, ringFull: readonly number[] = []): number {
    let mask = 0;
    for (const v of ringFull) mask |= 1 << v;
    Atomics.store(this.shared, S.HARVEST_RING_FULL, mask);
    Atomics.store(this.shared, S.HARVEST_FINAL, final ? 1 : 0);
    const k = ++this.requests;
    Atomics.store(this.shared, S.HARVEST_REQUEST, k);
    this.park(ControlStep.USER_WAIT_HARVESTERS, k * this.threads, 0);
    const failed = Atomics.load(this.shared, S.HARVEST_FAILED);
    if (failed !== 0) throw new HarvesterRunError(`harvester thread ${failed - 1} of ${this.threads} threw in collection ${k} (its stack is the run's H${failed - 1} error)`);
    let n = this.takeReports(sink);
    if (final && this.mode === 'ring' && this.vm.ringWithBitmap) {
      const bits = collectLegacyBitmaps(this.vm, this.slots, this.deviceBitmaps, sink);
      this.stats.deviceBitmapRecords += bits;
      n += bits;
    }
    this.stats.records += n;
    this.updateStats(final);
    return n;
  }

  private takeReports(sink: ReadyPageSink): number {
    const { copier } = this;
    let n = 0;
    for (let t = 0; t < this.threads; t++) {
      const r = this.reports[t]!;
      const count = Atomics.load(this.shared, S.HARVEST_REPORTS_0 + t);
      for (let j = 0; j < count * REPORT_WORDS; j += REPORT_WORDS) {
        if (copier === null) {
          sink(r[j]!, r[j + 1]!, r[j + 2]!);
          continue;
        }
        this.oracle(r[j]!, r[j + 1]!, r[j + 2]!);
        copier.account(r[j]!, r[j + 1]!, r[j + 3]!);
      }
      n += count;
    }
    return n;
  }

  private updateStats(final: boolean): void {
    const s = this.stats;
    s.collections++;
    s.resetCalls = Atomics.load(this.shared, S.HARVEST_RESET_CALLS);
    s.entriesReset = Atomics.load(this.shared, S.HARVEST_ENTRIES_RESET);
    s.getCalls = Atomics.load(this.shared, S.HARVEST_GET_CALLS);
    s.clearCalls = Atomics.load(this.shared, S.HARVEST_CLEAR_CALLS);
    this.user.ioctlErrors = Atomics.load(this.shared, S.HARVEST_IOCTL_ERRORS);
    // Every RESET mark must have been reset by the end of an iteration: the threads' sums compared.
    if (final && this.mode === 'ring' && Atomics.load(this.shared, S.HARVEST_MARKS) !== s.entriesReset) {
      s.resetMismatches++;
      Atomics.store(this.shared, S.HARVEST_MARKS, s.entriesReset);
    }
  }
}
