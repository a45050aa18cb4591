/**
 * A user's harvester in a collector's place: the run (free or controlled) asks it for
 * collections exactly as it asks the built-in collectors, and judges what it reports with the
 * same oracle, copy check and reset-count check. The harness's own share: the reset-count check
 * (RESET marks made through the accessors against what each KVM_RESET_DIRTY_RINGS returned) and,
 * with ring-with-bitmap, the device bitmap read after the final collection.
 */
import { KvmError, isKvmError } from '../abi/errno.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, SlotBitmaps, collectLegacyBitmaps, emptyCollectorStats } from '../userspace/log-collectors.js';
import type { Collection, DirtyRingMapping, HarvesterDefinition, HarvesterInstance, HarvesterKvm, MemslotInfo } from './contract.js';
import { type ResetMarks, RingMapping } from './ring-mapping.js';
import { ThreadStep } from './thread-layout.js';
import { HarvesterSharedWords } from './shared-words.js';

const TWO_POW_32 = 2 ** 32;
/** An offset that names no page: what a non-integer report becomes (the oracle counts it as a bad record). */
const NO_PAGE = 0xffffffff;

/** A user harvester failed: its stack, and which collection. */
export class HarvesterRunError extends Error {
  override readonly name = 'HarvesterRunError';
}

/** What the harness saw the user's harvester do, beyond the collector statistics. */
export interface UserHarvesterStats {
  /** Ioctls that returned an errno to the harvester. */
  ioctlErrors: number;
  firstIoctlError: string | null;
}

/** What a run saw the user's harvester do: the harvester's part of a run's result. */
export interface HarvesterReport {
  readonly name: string;
  readonly log: string;
  readonly collections: number;
  readonly pagesReported: number;
  readonly resetCalls: number;
  readonly resetMismatches: number;
  readonly ioctlErrors: number;
  readonly firstIoctlError: string | null;
  /** Reset batches the kernel skipped because their entries named no valid page (garbage entries). */
  readonly kernelSkippedBatches: number;
}

export interface UserCollectorOptions {
  /** Every ring's first free-running index (Vm.presetRingIndex). */
  readonly ringStart?: number;
  /** On a thread of a threaded harvester: which, of how many, and their barrier. */
  readonly thread?: { readonly index: number; readonly count: number; barrier(): void };
  /**
   * Check each reset's count against this collector's RESET marks (default). A thread of a
   * threaded harvester does not: another thread's reset consumes its marks (the harness then
   * checks the sums, threaded-collector.ts).
   */
  readonly checkResets?: boolean;
  /** Told where the harvester is (an ioctl), for the last-step report of a hung thread. */
  readonly onStep?: (step: number) => void;
  /** The words the harvester's threads share (default: this thread's own). */
  readonly sharedWords?: SharedArrayBuffer;
}

export class UserHarvesterCollector implements LogCollector {
  readonly mode;
  readonly stats: CollectorStats = emptyCollectorStats();
  readonly user: UserHarvesterStats = { ioctlErrors: 0, firstIoctlError: null };
  private instance: HarvesterInstance | null = null;
  private readonly marks: ResetMarks = { marked: 0 };
  private readonly rings: (RingMapping | undefined)[];
  private readonly deviceBitmaps = new SlotBitmaps();
  private sink: ReadyPageSink = () => {};
  private readonly ringFullView: number[] = [];
  private readonly collection: { final: boolean; ringFull: readonly number[] } = { final: false, ringFull: this.ringFullView };

  constructor(
    readonly definition: HarvesterDefinition,
    private readonly vm: Vm,
    private readonly vcpus: number,
    private readonly slots: readonly Memslot[],
    private readonly options: UserCollectorOptions = {},
  ) {
    this.mode = definition.log;
    this.rings = new Array<RingMapping | undefined>(vcpus);
  }

  /**
   * The harvester's instance, made at the first collection: a create() that throws then fails
   * the run like a collection that throws (with the seed), instead of the run's construction.
   */
  private instanceOf(): HarvesterInstance {
    if (this.instance !== null) return this.instance;
    let made: unknown;
    try {
      made = this.definition.create(this.kvm());
    } catch (e) {
      throw new HarvesterRunError(`harvester '${this.definition.name}' threw in create(): ${stackOf(e)}`);
    }
    if (made === null || typeof made !== 'object' || typeof (made as HarvesterInstance).collect !== 'function') {
      throw new HarvesterRunError(`harvester '${this.definition.name}': create() must return an object with a collect(collection) method`);
    }
    this.instance = made as HarvesterInstance;
    return this.instance;
  }

  collect(sink: ReadyPageSink, final: boolean, ringFull: readonly number[] = []): number {
    this.sink = sink;
    const before = this.stats.records;
    this.collection.final = final;
    this.ringFullView.length = 0;
    for (const i of ringFull) this.ringFullView.push(i);
    const instance = this.instanceOf();
    try {
      instance.collect(this.collection as Collection);
    } catch (e) {
      throw new HarvesterRunError(`harvester '${this.definition.name}' threw in collection ${this.stats.collections + 1}${final ? ' (final)' : ''}: ${stackOf(e)}`);
    }
    if (final && this.mode === 'ring' && this.vm.ringWithBitmap) {
      // Writes with no running vCPU are in the slots' bitmaps, read last of all.
      const bits = collectLegacyBitmaps(this.vm, this.slots, this.deviceBitmaps, sink);
      this.stats.deviceBitmapRecords += bits;
      this.stats.getCalls += this.slots.length;
      this.stats.records += bits;
    }
    this.stats.collections++;
    return this.stats.records - before;
  }

  report(): HarvesterReport {
    const s = this.stats;
    return {
      name: this.definition.name,
      log: this.mode,
      collections: s.collections,
      pagesReported: s.records,
      resetCalls: s.resetCalls,
      resetMismatches: s.resetMismatches,
      ioctlErrors: this.user.ioctlErrors,
      firstIoctlError: this.user.firstIoctlError,
      kernelSkippedBatches: this.vm.stats().resetBatchesSkipped,
    };
  }

  private readonly reportPage = (slot: number, offset: number): void => {
    this.stats.records++;
    // Offsets below 2^32 (every page of a slot under 16 TiB): no split needed.
    if (offset >>> 0 === offset) {
      this.sink(slot >>> 0, offset, 0);
      return;
    }
    if (!Number.isInteger(offset) || offset < 0) {
      this.sink(slot >>> 0, NO_PAGE, NO_PAGE);
      return;
    }
    this.sink(slot >>> 0, offset >>> 0, (offset / TWO_POW_32) >>> 0);
  };

  /** The harvester's view of the VM (see HarvesterKvm). */
  private kvm(): HarvesterKvm {
    const memslots: MemslotInfo[] = this.slots.map((s) => ({ slot: s.encodedSlot, id: s.id, asId: s.asId, baseGfn: s.baseGfn, pageCount: s.pageCount }));
    return {
      log: this.mode,
      vcpuCount: this.vcpus,
      memslots,
      ringMemory: this.vm.ringMemory,
      thread: this.options.thread?.index ?? 0,
      threads: this.options.thread?.count ?? 1,
      barrier: () => {
        this.options.onStep?.(ThreadStep.BARRIER);
        this.options.thread?.barrier();
      },
      shared: new HarvesterSharedWords(this.options.sharedWords),
      ring: (vcpu) => this.ring(vcpu),
      resetDirtyRings: () => this.resetDirtyRings(),
      getDirtyLog: (slot, bitmap) => {
        this.options.onStep?.(ThreadStep.GET);
        this.stats.getCalls++;
        this.ioctl(() => this.vm.getDirtyLog(slot, bitmap));
      },
      clearDirtyLog: (slot, firstPage, numPages, bitmap) => {
        this.options.onStep?.(ThreadStep.CLEAR);
        this.stats.clearCalls++;
        this.ioctl(() => this.vm.clearDirtyLog(slot, firstPage, numPages, bitmap));
      },
      kick: (vcpu) => {
        this.checkVcpu('kick', vcpu);
        this.vm.kickVcpu(vcpu);
      },
      report: this.reportPage,
    };
  }

  private ring(vcpu: number): DirtyRingMapping {
    this.checkVcpu('ring', vcpu);
    let r = this.rings[vcpu];
    if (r === undefined) {
      // mmap of the vCPU fd: EINVAL when the VM logs through bitmaps only.
      const views = this.ioctl(() => this.vm.mmapRing(vcpu));
      r = new RingMapping(vcpu, views, (this.options.ringStart ?? 0) >>> 0, this.marks);
      this.rings[vcpu] = r;
    }
    return r;
  }

  /** RESET marks made since the last call (a thread of a threaded harvester hands them to the harness). */
  takeMarks(): number {
    const n = this.marks.marked;
    this.marks.marked = 0;
    return n;
  }

  private resetDirtyRings(): number {
    this.options.onStep?.(ThreadStep.RESET);
    if (this.options.checkResets === false) {
      const n = this.ioctl(() => this.vm.resetDirtyRings());
      this.stats.resetCalls++;
      this.stats.entriesReset += n;
      return n;
    }
    const marked = this.marks.marked;
    const n = this.ioctl(() => this.vm.resetDirtyRings());
    this.marks.marked -= marked;
    this.stats.resetCalls++;
    this.stats.entriesReset += n;
    // The reset must consume exactly the entries marked RESET since the last one.
    if (n !== marked) this.stats.resetMismatches++;
    return n;
  }

  /** A vCPU number the harvester passed: an fd KVM never gave it is EINVAL here. */
  private checkVcpu(call: string, vcpu: number): void {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.vcpus) {
      this.ioctl(() => {
        throw new KvmError('EINVAL', `${call}: no vCPU ${vcpu} (the VM has ${this.vcpus})`, 'vcpu');
      });
    }
  }

  /** An ioctl on the harvester's behalf: an errno goes back to it (and is counted). */
  private ioctl<T>(call: () => T): T {
    try {
      return call();
    } catch (e) {
      if (isKvmError(e)) {
        this.user.ioctlErrors++;
        this.user.firstIoctlError ??= e.message;
      }
      throw e;
    }
  }
}

function stackOf(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
