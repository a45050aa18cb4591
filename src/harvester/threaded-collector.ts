/**
 * A harvester with threads of its own, seen from the harness's thread: each collection is a
 * request every harvester thread serves at once (thread-runner.ts); the harness waits, bounded,
 * until all are done, then hands their reports to the sink. A thread that fails ends the run
 * with its stack; one that does not finish in time ends it naming the thread and its last step
 * — and the harness goes on (its workers are terminated, the next run starts clean).
 */
import { SharedBlock } from '../abi/layout.js';
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import { type CollectorStats, type LogCollector, type ReadyPageSink, SlotBitmaps, collectLegacyBitmaps, emptyCollectorStats } from '../userspace/log-collectors.js';
import type { HarvesterDefinition } from './contract.js';
import type { DirtyPageCopier, SharedCopierBuffers } from '../userspace/dirty-copier.js';
import { HarvesterAccess } from './ring-mapping.js';
import { HARVESTER_SHARED_WORDS } from './shared-words.js';
import {
  ERROR_TEXT_BYTES,
  type HarvesterThreadConfig,
  type HarvesterThreadHandle,
  HarvesterThreadsLayout,
  REPORT_WORDS,
  type SpawnHarvesterThread,
  ThreadStep,
  ThreadWords,
} from './thread-layout.js';
import { type HarvesterReport, HarvesterRunError, type UserHarvesterStats } from './user-collector.js';

const C = HarvesterThreadsLayout.words;
/** Loading the module (TypeScript: the compiler too) in every thread: generous. */
const START_BOUND_MS = 30_000;
/** A collection that takes longer has a thread that hangs. */
export const COLLECT_BOUND_MS = 10_000;
const WAIT_SLICE_MS = 50;
/** How often ready() looks at the threads' start (it must not block the thread's event loop). */
const READY_POLL_MS = 5;
/** Reports one thread may make in one collection, beyond a ring's worth per vCPU and every page. */
const REPORT_SLACK = 4096;

const STEP_NAMES: Readonly<Record<number, string>> = {
  [HarvesterAccess.LOAD_FLAGS]: 'loadFlagsAcquire',
  [HarvesterAccess.READ_SLOT]: 'readSlot',
  [HarvesterAccess.READ_OFFSET]: 'readOffset',
  [HarvesterAccess.STORE_RESET]: 'storeResetRelease',
  [HarvesterAccess.STORE_FLAGS]: 'storeFlagsPlain',
  [HarvesterAccess.LOAD_FLAGS_PLAIN]: 'loadFlagsPlain',
  [HarvesterAccess.SHARED_LOAD]: 'a load of kvm.shared',
  [HarvesterAccess.SHARED_STORE]: 'a store to kvm.shared',
  [ThreadStep.COLLECT]: 'collect() entered, no ring access or ioctl since',
  [ThreadStep.RESET]: 'KVM_RESET_DIRTY_RINGS',
  [ThreadStep.GET]: 'KVM_GET_DIRTY_LOG',
  [ThreadStep.CLEAR]: 'KVM_CLEAR_DIRTY_LOG',
  [ThreadStep.BARRIER]: 'barrier()',
  [ThreadStep.IDLE]: 'waiting for a collection',
};

export class ThreadedHarvesterCollector implements LogCollector {
  readonly mode;
  readonly stats: CollectorStats = emptyCollectorStats();
  readonly user: UserHarvesterStats = { ioctlErrors: 0, firstIoctlError: null };
  private readonly ctl: Int32Array;
  private readonly threadWords: Int32Array;
  private readonly ringFull: Int32Array;
  private readonly reports: Uint32Array[] = [];
  private readonly errorText: Uint8Array;
  private readonly handles: HarvesterThreadHandle[] = [];
  private readonly threads: number;
  private readonly deviceBitmaps = new SlotBitmaps();
  private readonly control: { readonly buffer: SharedArrayBuffer; readonly i32: Int32Array };
  private copier: DirtyPageCopier | null = null;
  private oracle: ReadyPageSink = () => {};
  private started = false;
  private readonly sharedWords = new SharedArrayBuffer(HARVESTER_SHARED_WORDS * 4);
  private lost: string | null = null;
  private requests = 0;
  private records = 0;

  constructor(
    readonly definition: HarvesterDefinition,
    private readonly url: string,
    private readonly vm: Vm,
    private readonly vcpus: number,
    private readonly slots: readonly Memslot[],
    spawn: SpawnHarvesterThread,
    private readonly ringStart = 0,
    private readonly coverage: SharedArrayBuffer | null = null,
  ) {
    this.mode = definition.log;
    this.threads = definition.threads ?? 1;
    this.control = new SharedBlock(HarvesterThreadsLayout);
    this.ctl = this.control.i32;
    this.threadWords = new Int32Array(new SharedArrayBuffer(this.threads * ThreadWords.COUNT * 4));
    this.ringFull = new Int32Array(new SharedArrayBuffer(Math.max(1, vcpus) * 4));
    this.errorText = new Uint8Array(new SharedArrayBuffer(ERROR_TEXT_BYTES));
    const pages = slots.reduce((n, s) => n + s.pageCount, 0);
    const capacity = vm.ringEntries * vcpus + pages + REPORT_SLACK;
    for (let t = 0; t < this.threads; t++) {
      this.reports.push(new Uint32Array(new SharedArrayBuffer(capacity * REPORT_WORDS * 4)));
      this.handles.push(spawn(t));
    }
  }

  /** The run's copier: each thread copies a page when its harvester reports it (thread-page-copier.ts). */
  copyOnReport(copier: DirtyPageCopier, oracle: ReadyPageSink): void {
    if (this.started) throw new Error('copyOnReport: the harvester threads have started');
    this.copier = copier;
    this.oracle = oracle;
    this.start(copier.shared());
  }

  /** Hand every thread its configuration: it loads the module and waits for collections. */
  private start(copy: SharedCopierBuffers | null): void {
    this.started = true;
    const { definition, vm, slots } = this;
    for (let t = 0; t < this.threads; t++) {
      const config: HarvesterThreadConfig = {
        url: this.url,
        thread: t,
        threads: this.threads,
        vcpus: this.vcpus,
        vm: vm.buffers(),
        slots: slots.map((s) => ({ asId: s.asId, id: s.id })),
        ringStart: this.ringStart,
        control: this.control.buffer,
        threadWords: this.threadWords.buffer as SharedArrayBuffer,
        ringFull: this.ringFull.buffer as SharedArrayBuffer,
        reports: this.reports[t]!.buffer as SharedArrayBuffer,
        errorText: this.errorText.buffer as SharedArrayBuffer,
        sharedWords: this.sharedWords,
        coverage: this.coverage,
        copy,
      };
      this.handles[t]!.api.run(config).catch((e: unknown) => {
        this.lost ??= `harvester '${definition.name}' thread ${t}: ${e instanceof Error ? e.message : String(e)}`;
      });
    }
  }

  collect(sink: ReadyPageSink, final: boolean, ringFull: readonly number[] = []): number {
    if (!this.started) this.start(null);
    this.awaitCount(C.READY, this.threads, START_BOUND_MS, 'start (load its module)');
    for (let i = 0; i < ringFull.length && i < this.ringFull.length; i++) this.ringFull[i] = ringFull[i]!;
    Atomics.store(this.ctl, C.RING_FULL_COUNT, Math.min(ringFull.length, this.ringFull.length));
    Atomics.store(this.ctl, C.FINAL, final ? 1 : 0);
    Atomics.store(this.ctl, C.DONE, 0);
    const k = ++this.requests;
    Atomics.store(this.ctl, C.REQUEST, k);
    Atomics.notify(this.ctl, C.REQUEST);
    this.awaitCount(C.DONE, this.threads, COLLECT_BOUND_MS, `finish collection ${k}${final ? ' (final)' : ''}`);
    const failed = Atomics.load(this.ctl, C.FAILED);
    if (failed !== 0) throw new HarvesterRunError(`harvester thread ${failed - 1} of ${this.threads}: ${this.errorMessage()}`);
    let n = this.takeReports(sink);
    if (final && this.mode === 'ring' && this.vm.ringWithBitmap) {
      const bits = collectLegacyBitmaps(this.vm, this.slots, this.deviceBitmaps, sink);
      this.stats.deviceBitmapRecords += bits;
      n += bits;
    }
    this.records += n;
    this.updateStats(final);
    return n;
  }

  /** Every thread has loaded the module and attached the VM (or the start failed: thrown). */
  async ready(): Promise<void> {
    if (!this.started) this.start(null);
    const deadline = performance.now() + START_BOUND_MS;
    while (Atomics.load(this.ctl, C.READY) < this.threads && Atomics.load(this.ctl, C.FAILED) === 0) {
      if (this.lost !== null) throw new HarvesterRunError(this.lost);
      const dead = this.handles.find((h) => h.failure !== null);
      if (dead !== undefined) throw new HarvesterRunError(`harvester '${this.definition.name}': a thread's worker died: ${dead.failure}`);
      if (performance.now() > deadline) throw new HarvesterRunError(`harvester '${this.definition.name}' did not start (load its module) within ${START_BOUND_MS} ms: ${this.lateThreads()}`);
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
  }

  /**
   * Every thread's reports of this collection: to the oracle, with the outcome of the copy the
   * thread made (copyOnReport); or, with no copier, to the sink (which copies now).
   */
  private takeReports(sink: ReadyPageSink): number {
    const { copier, oracle } = this;
    let n = 0;
    for (let t = 0; t < this.threads; t++) {
      const r = this.reports[t]!;
      const count = Atomics.load(this.threadWords, t * ThreadWords.COUNT + ThreadWords.REPORTS);
      for (let j = 0; j < count * REPORT_WORDS; j += REPORT_WORDS) {
        if (copier === null) {
          sink(r[j]!, r[j + 1]!, r[j + 2]!);
          continue;
        }
        oracle(r[j]!, r[j + 1]!, r[j + 2]!);
        copier.account(r[j]!, r[j + 1]!, r[j + 3]!);
      }
      n += count;
    }
    return n;
  }

  /** End the harvester's threads (their run calls return, or the workers are terminated). */
  async close(): Promise<void> {
    Atomics.store(this.ctl, C.TERMINATE, 1);
    Atomics.notify(this.ctl, C.REQUEST);
    Atomics.notify(this.ctl, C.GENERATION);
    await Promise.all(this.handles.map((h) => h.terminate()));
  }

  report(): HarvesterReport {
    return {
      name: this.definition.name,
      log: this.mode,
      collections: this.stats.collections,
      pagesReported: this.records,
      resetCalls: this.stats.resetCalls,
      resetMismatches: this.stats.resetMismatches,
      ioctlErrors: this.user.ioctlErrors,
      firstIoctlError: this.user.firstIoctlError,
      kernelSkippedBatches: this.vm.stats().resetBatchesSkipped,
    };
  }

  /** Wait until word `w` reaches `n`, a thread fails, or `boundMs` passes (then name the late threads). */
  private awaitCount(w: number, n: number, boundMs: number, what: string): void {
    const deadline = performance.now() + boundMs;
    for (;;) {
      const v = Atomics.load(this.ctl, w);
      if (v >= n || Atomics.load(this.ctl, C.FAILED) !== 0) return;
      if (this.lost !== null) throw new HarvesterRunError(this.lost);
      const dead = this.handles.find((h) => h.failure !== null);
      if (dead !== undefined) throw new HarvesterRunError(`harvester '${this.definition.name}': a thread's worker died: ${dead.failure}`);
      if (performance.now() > deadline) throw new HarvesterRunError(`harvester '${this.definition.name}' did not ${what} within ${boundMs} ms: ${this.lateThreads()}`);
      Atomics.wait(this.ctl, w, v, WAIT_SLICE_MS);
    }
  }

  private lateThreads(): string {
    const late: string[] = [];
    for (let t = 0; t < this.threads; t++) {
      const base = t * ThreadWords.COUNT;
      if (Atomics.load(this.threadWords, base + ThreadWords.DONE_AT) >= this.requests && this.requests > 0) continue;
      const step = Atomics.load(this.threadWords, base + ThreadWords.LAST_STEP);
      const name = STEP_NAMES[step] ?? 'not started';
      const a = Atomics.load(this.threadWords, base + ThreadWords.LAST_A) >>> 0;
      const shared = step === HarvesterAccess.SHARED_LOAD || step === HarvesterAccess.SHARED_STORE;
      const entry = step >= HarvesterAccess.LOAD_FLAGS && step <= HarvesterAccess.LOAD_FLAGS_PLAIN ? ` of entry ${a}` : shared ? ` word ${a}` : '';
      late.push(`thread ${t}, last step ${name}${entry}`);
    }
    return late.join('; ');
  }

  private errorMessage(): string {
    const end = this.errorText.indexOf(0);
    return new TextDecoder().decode(this.errorText.slice(0, end < 0 ? this.errorText.length : end));
  }

  private updateStats(final: boolean): void {
    const s = this.stats;
    s.collections++;
    s.records = this.records;
    s.resetCalls = Atomics.load(this.ctl, C.RESET_CALLS);
    s.entriesReset = Atomics.load(this.ctl, C.ENTRIES_RESET);
    s.getCalls = Atomics.load(this.ctl, C.GET_CALLS);
    s.clearCalls = Atomics.load(this.ctl, C.CLEAR_CALLS);
    this.user.ioctlErrors = Atomics.load(this.ctl, C.IOCTL_ERRORS);
    // Every mark must have been reset by the end of an iteration: the threads' sums compared.
    if (final && this.mode === 'ring' && Atomics.load(this.ctl, C.MARKS) !== s.entriesReset) {
      s.resetMismatches++;
      Atomics.store(this.ctl, C.MARKS, s.entriesReset);
    }
  }
}
