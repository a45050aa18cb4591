/**
 * One thread of a threaded harvester (a worker of its own): attach to the run's VM, load the
 * harvester's module, and serve the harness's collections — wait for a request, run `collect`,
 * hand the reports and the counters over through shared memory, say done. Every accessor and
 * ioctl records where the thread is, so that the harness can name the last step of a thread
 * that never finishes.
 */
import { SharedBlock } from '../abi/layout.js';
import { installStepHook, Step } from '../kernel/step-hook.js';
import { installCoverage } from '../kernel/coverage.js';
import type { Memslot } from '../kernel/memslots.js';
import { Vm } from '../kernel/vm.js';
import { ThreadPageCopier } from '../userspace/thread-page-copier.js';
import { harvesterAt } from '../stress/harvester-source.js';
import { runWasmAsBuilt } from './wasm/wasm-harvester.js';
import { type HarvesterThreadConfig, ERROR_TEXT_BYTES, HarvesterThreadsLayout, REPORT_WORDS, ThreadStep, ThreadWords } from './thread-layout.js';
import { HarvesterRunError, UserHarvesterCollector } from './user-collector.js';

const C = HarvesterThreadsLayout.words;
/** How long a wait sleeps before it looks at TERMINATE again. */
const WAIT_SLICE_MS = 200;
/** A barrier some thread never reaches fails after this (the harness gives up sooner). */
const BARRIER_BOUND_MS = 30_000;

export async function runHarvesterThread(cfg: HarvesterThreadConfig): Promise<void> {
  // A file in Node; in the browser app, the definition the page's provider maps the URL to.
  const definition = await harvesterAt(cfg.url);
  runWasmAsBuilt();
  // Before the VM is attached (reset-batch.ts records from then on). The threads share userspace's
  // block: counts of threads recording at once may be lost, never an edge state reached.
  if (cfg.coverage !== null) installCoverage(cfg.coverage, 0);
  const ctl = new SharedBlock(HarvesterThreadsLayout, cfg.control).i32;
  const mine = new Int32Array(cfg.threadWords, cfg.thread * ThreadWords.COUNT * 4, ThreadWords.COUNT);
  const reports = new Uint32Array(cfg.reports);
  const vm = Vm.attach(cfg.vm);
  const slots = cfg.slots.map((s) => vm.memslots.findById(s.asId, s.id)).filter((s): s is Memslot => s !== null);
  const onStep = (step: number): void => {
    Atomics.store(mine, ThreadWords.LAST_STEP, step);
  };
  installStepHook((step, a, b) => {
    if (step !== Step.HARVESTER_ACCESS) return;
    Atomics.store(mine, ThreadWords.LAST_A, a);
    Atomics.store(mine, ThreadWords.LAST_STEP, b);
  });
  const barrier = (): void => waitBarrier(ctl, cfg.threads);
  const collector = new UserHarvesterCollector(definition, vm, cfg.vcpus, slots, {
    ringStart: cfg.ringStart,
    thread: { index: cfg.thread, count: cfg.threads, barrier },
    checkResets: false,
    onStep,
    sharedWords: cfg.sharedWords,
  });
  const capacity = Math.floor(reports.length / REPORT_WORDS);
  let count = 0;
  // The copy is made as the page is reported, on this thread (thread-page-copier.ts).
  const copier = cfg.copy === null ? null : new ThreadPageCopier(slots, cfg.copy);
  const push = (slot: number, offLo: number, offHi: number): void => {
    if (count >= capacity) throw new HarvesterRunError(`harvester '${definition.name}' thread ${cfg.thread} reported more than ${capacity} pages in one collection`);
    const j = count++ * REPORT_WORDS;
    reports[j] = slot;
    reports[j + 1] = offLo;
    reports[j + 2] = offHi;
    reports[j + 3] = copier === null ? 0 : copier.copy(slot, offLo, offHi);
  };
  Atomics.add(ctl, C.READY, 1);
  Atomics.notify(ctl, C.READY);
  let seen = 0;
  for (;;) {
    onStep(ThreadStep.IDLE);
    while (Atomics.load(ctl, C.REQUEST) === seen) {
      if (Atomics.load(ctl, C.TERMINATE) !== 0) return;
      Atomics.wait(ctl, C.REQUEST, seen, WAIT_SLICE_MS);
    }
    seen = Atomics.load(ctl, C.REQUEST);
    const ringFull = new Int32Array(cfg.ringFull).subarray(0, Atomics.load(ctl, C.RING_FULL_COUNT));
    count = 0;
    onStep(ThreadStep.COLLECT);
    const before = { ...collector.stats };
    const errnosBefore = collector.user.ioctlErrors;
    try {
      collector.collect(push, Atomics.load(ctl, C.FINAL) === 1, Array.from(ringFull));
    } catch (e) {
      fail(ctl, cfg, e);
    }
    const s = collector.stats;
    Atomics.add(ctl, C.MARKS, collector.takeMarks());
    Atomics.add(ctl, C.RESET_CALLS, s.resetCalls - before.resetCalls);
    Atomics.add(ctl, C.ENTRIES_RESET, s.entriesReset - before.entriesReset);
    Atomics.add(ctl, C.GET_CALLS, s.getCalls - before.getCalls);
    Atomics.add(ctl, C.CLEAR_CALLS, s.clearCalls - before.clearCalls);
    Atomics.add(ctl, C.IOCTL_ERRORS, collector.user.ioctlErrors - errnosBefore);
    Atomics.store(mine, ThreadWords.REPORTS, count);
    Atomics.store(mine, ThreadWords.DONE_AT, seen);
    Atomics.add(ctl, C.DONE, 1);
    Atomics.notify(ctl, C.DONE);
  }
}

/** Sense-counting barrier: the last thread to arrive opens the next generation. */
function waitBarrier(ctl: Int32Array, threads: number): void {
  const gen = Atomics.load(ctl, C.GENERATION);
  if (Atomics.add(ctl, C.ARRIVED, 1) + 1 === threads) {
    Atomics.store(ctl, C.ARRIVED, 0);
    Atomics.add(ctl, C.GENERATION, 1);
    Atomics.notify(ctl, C.GENERATION);
    return;
  }
  const deadline = Date.now() + BARRIER_BOUND_MS;
  while (Atomics.load(ctl, C.GENERATION) === gen) {
    if (Atomics.load(ctl, C.TERMINATE) !== 0 || Date.now() > deadline) throw new HarvesterRunError(`barrier: not every one of the ${threads} threads arrived`);
    Atomics.wait(ctl, C.GENERATION, gen, WAIT_SLICE_MS);
  }
}

/** The first failing thread writes its error (with the stack) for the harness. */
function fail(ctl: Int32Array, cfg: HarvesterThreadConfig, e: unknown): void {
  if (Atomics.compareExchange(ctl, C.FAILED, 0, 1 + cfg.thread) !== 0) return;
  // A HarvesterRunError's message has the harvester's own stack already.
  const what = e instanceof HarvesterRunError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
  const text = new TextEncoder().encode(what).subarray(0, ERROR_TEXT_BYTES);
  new Uint8Array(cfg.errorText).set(text);
}
