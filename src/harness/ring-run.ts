/**
 * One `dirtyring run`: a VM with a dirty ring, vCPU worker threads running a guest workload,
 * and userspace (this thread) doing what dirty_log_test's host does, for several vCPUs:
 *
 *   for each iteration k:
 *     publish k, resume every vCPU;
 *     until the interval has passed (and the guests made progress): collect on the first pass,
 *       whenever a vCPU stalls on a full ring (then resume it), and periodically;
 *     kick and park every vCPU; collect once more; verify every page (the oracle).
 *
 * Platform-neutral: the caller supplies how to spawn a vCPU worker (Node or browser).
 */
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_MEM_LOG_DIRTY_PAGES,
  PAGE_SIZE,
  encodeSlot,
} from '../abi/constants.js';
import { isKvmError } from '../abi/errno.js';
import { GuestGlobalsLayout, SharedBlock, VcpuLayout, VcpuState } from '../abi/layout.js';
import { DirtyLogOracle, type LostPage, type OracleSlot, type PendingStore } from '../checker/oracle.js';
import type { WorkloadKind } from '../guest/workloads.js';
import { Mutant, mutantNames } from '../kernel/mutants.js';
import { now } from '../kernel/sync.js';
import { Vm } from '../kernel/vm.js';
import { withTimeout } from '../platform/async-wait.js';
import { RingCollector } from '../userspace/ring-collector.js';
import { SharedReaper } from '../userspace/self-reaper.js';
import { VcpuControlPlane } from '../userspace/vcpu-control.js';
import type { SpawnVcpuWorker, VcpuWorkerHandle } from '../userspace/vcpu-worker-api.js';
import { type RunConfig, validateRunConfig } from './run-config.js';

export interface IterationReport {
  readonly iteration: number;
  readonly guestWrites: number;
  readonly entriesHarvested: number;
  readonly ringFullExits: number;
  readonly collections: number;
  readonly pagesReported: number;
  readonly pagesChanged: number;
  readonly lostPages: number;
  readonly wrongValues: number;
  readonly falsePositives: number;
  readonly elapsedMs: number;
}

export interface RunSummary {
  ok: boolean;
  seed: number;
  log: 'ring';
  vcpus: number;
  iterations: number;
  memoryBytes: number;
  memslots: number;
  ringEntries: number;
  workload: WorkloadKind;
  mutants: string[];
  guestWrites: number;
  guestStores: number;
  faults: number;
  spuriousFaults: number;
  pushes: number;
  pagesHarvested: number;
  ringFullExits: number;
  stallMs: number;
  maxStallMs: number;
  resetCalls: number;
  entriesReset: number;
  resetMismatches: number;
  badEntries: number;
  duplicates: number;
  lostPages: number;
  wrongValues: number;
  falsePositives: number;
  kernelWarnings: number;
  kernelBugs: number;
  tlbFlushes: number;
  mmuLockMaxHoldUs: number;
  mmuLockTotalHoldUs: number;
  elapsedMs: number;
  lost: LostPage[];
  error: string | null;
}

export interface RunHooks {
  readonly spawn: SpawnVcpuWorker;
  readonly onIteration?: (report: IterationReport) => void;
  /**
   * Test hook: during this iteration, turn LOG_DIRTY_PAGES off on this memslot id a third of
   * the way through and on again at two thirds (the oracle does not judge the slot there).
   */
  readonly toggleLog?: { readonly slotId: number; readonly iteration: number };
}

/** Stop waiting for threads after this long without progress: they are wedged. */
const CONTROL_TIMEOUT_MS = 15_000;
const FIRST_SLOT_ID = 1;
/** Data slots start at 1 GiB of guest physical memory, like dirty_log_test's top-of-memory slot. */
const FIRST_SLOT_GFN = (1 << 30) / PAGE_SIZE;

export async function runRing(input: Partial<RunConfig>, hooks: RunHooks): Promise<RunSummary> {
  const config = validateRunConfig(input);
  const t0 = now();
  const vm = Vm.create({ mutants: config.mutants });
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, config.ringEntries * 16);

  // Memslots: equal parts of guest memory, contiguous in guest physical address space.
  const totalPages = config.memoryBytes / PAGE_SIZE;
  const oracleSlots: OracleSlot[] = [];
  let gfn = FIRST_SLOT_GFN;
  for (let i = 0; i < config.memslots; i++) {
    const pageCount = Math.floor(totalPages / config.memslots) + (i < totalPages % config.memslots ? 1 : 0);
    const id = FIRST_SLOT_ID + i;
    vm.setUserMemoryRegion({
      slot: encodeSlot(0, id),
      flags: KVM_MEM_LOG_DIRTY_PAGES,
      guestPhysAddr: gfn * PAGE_SIZE,
      memorySize: pageCount * PAGE_SIZE,
    });
    const slot = vm.memslots.findById(0, id)!;
    oracleSlots.push({ encodedSlot: slot.encodedSlot, id, baseGfn: gfn, pageCount, mem32: slot.mem32 });
    gfn += pageCount;
  }
  for (let i = 0; i < config.vcpus; i++) vm.createVcpu();

  const globals = new SharedBlock(GuestGlobalsLayout);
  const control = new VcpuControlPlane(vm, config.vcpus);
  const collector = new RingCollector(vm, config.vcpus, {
    skipEveryNth: (config.mutants & Mutant.HARVEST_SKIPS_ENTRY) !== 0 ? 61 : 0,
  });
  const oracle = new DirtyLogOracle(oracleSlots, config.seed);
  const sink = (_vcpu: number, slot: number, offLo: number, offHi: number): void => oracle.report(slot, offLo, offHi);
  // Self-reap: vCPU threads and this thread all reap through one SharedReaper.
  const reaperBuffers = config.selfReap ? SharedReaper.createBuffers(oracleSlots) : undefined;
  const reaper = reaperBuffers ? new SharedReaper(vm, reaperBuffers) : null;
  const drainSink = (slot: number, offset: number): void => oracle.report(slot, offset, 0);
  const harvestedTotal = (): number => (reaper ? reaper.stats().harvested : collector.harvestedTotal);

  const summary: RunSummary = {
    ok: false,
    seed: config.seed,
    log: 'ring',
    vcpus: config.vcpus,
    iterations: 0,
    memoryBytes: config.memoryBytes,
    memslots: config.memslots,
    ringEntries: config.ringEntries,
    workload: config.workload,
    mutants: mutantNames(config.mutants),
    guestWrites: 0,
    guestStores: 0,
    faults: 0,
    spuriousFaults: 0,
    pushes: 0,
    pagesHarvested: 0,
    ringFullExits: 0,
    stallMs: 0,
    maxStallMs: 0,
    resetCalls: 0,
    entriesReset: 0,
    resetMismatches: 0,
    badEntries: 0,
    duplicates: 0,
    lostPages: 0,
    wrongValues: 0,
    falsePositives: 0,
    kernelWarnings: 0,
    kernelBugs: 0,
    tlbFlushes: 0,
    mmuLockMaxHoldUs: 0,
    mmuLockTotalHoldUs: 0,
    elapsedMs: 0,
    lost: [],
    error: null,
  };

  const workers: VcpuWorkerHandle[] = [];
  const sumVcpu = (field: keyof typeof VcpuLayout.floats): number => {
    let s = 0;
    for (let i = 0; i < config.vcpus; i++) s += vm.vcpuBlock(i).f64[VcpuLayout.floats[field]]!;
    return s;
  };

  try {
    const ranges = oracleSlots.map((s) => ({ baseGfn: s.baseGfn, pageCount: s.pageCount }));
    for (let i = 0; i < config.vcpus; i++) workers.push(hooks.spawn(i));
    await Promise.all(
      workers.map((w, i) =>
        withTimeout(
          w.api.start({
            vm: vm.buffers(),
            vcpuIndex: i,
            vcpuCount: config.vcpus,
            globals: globals.buffer,
            workload: {
              kind: config.workload,
              seed: config.seed,
              ranges,
              burstPages: config.burstPages,
              burstPercent: config.burstPercent,
            },
            emulateAllStores: config.emulateAllStores,
            preemptAfterMs: 20,
            ...(reaperBuffers ? { selfReap: reaperBuffers } : {}),
          }),
          CONTROL_TIMEOUT_MS,
          `starting vCPU ${i}`,
        ),
      ),
    );
    await control.waitAllParked(CONTROL_TIMEOUT_MS);

    for (let k = 1; k <= config.iterations; k++) {
      const report = await runIteration(k);
      summary.iterations = k;
      hooks.onIteration?.(report);
    }
  } catch (e) {
    summary.error = isKvmError(e) ? e.message : e instanceof Error ? e.message : String(e);
    const failures = workers.map((w) => w.failure).filter((f): f is string => f !== null);
    if (failures.length > 0) summary.error += `; worker: ${failures[0]}`;
  } finally {
    control.terminateAll();
    await Promise.all(
      workers.map(async (w, i) => {
        try {
          const err = await withTimeout(w.api.join(), 5000, `joining vCPU ${i}`);
          if (err && !summary.error) summary.error = `vCPU ${i}: ${err}`;
        } catch (e) {
          if (!summary.error) summary.error = e instanceof Error ? e.message : String(e);
        } finally {
          await w.terminate();
        }
      }),
    );
  }

  const vmStats = vm.stats();
  summary.guestWrites = sumVcpu('INSTRUCTIONS');
  summary.guestStores = sumVcpu('STORES');
  summary.faults = sumVcpu('FAULTS');
  summary.spuriousFaults = sumVcpu('SPURIOUS_FAULTS');
  summary.pushes = sumVcpu('PUSHES');
  summary.ringFullExits = sumVcpu('RING_FULL_EXITS');
  summary.stallMs = sumVcpu('STALL_NS') / 1e6;
  for (let i = 0; i < config.vcpus; i++) {
    summary.maxStallMs = Math.max(summary.maxStallMs, vm.vcpuBlock(i).f64[VcpuLayout.floats.STALL_MAX_NS]! / 1e6);
  }
  summary.pagesHarvested = collector.harvestedTotal;
  summary.resetCalls = collector.resetCalls;
  summary.entriesReset = collector.entriesResetTotal;
  summary.resetMismatches = collector.mismatches.length;
  if (reaper) {
    const r = reaper.stats();
    summary.pagesHarvested = r.harvested;
    summary.resetCalls = r.resets;
    summary.entriesReset = r.entriesReset;
    summary.resetMismatches = r.mismatches;
    summary.badEntries += r.badEntries;
  }
  summary.kernelWarnings = vmStats.warnings;
  summary.kernelBugs = vmStats.kernelBugs;
  summary.tlbFlushes = vmStats.tlbFlushes;
  summary.mmuLockMaxHoldUs = round3(vmStats.mmuLockMaxHoldUs);
  summary.mmuLockTotalHoldUs = round3(vmStats.mmuLockTotalHoldUs);
  summary.stallMs = round3(summary.stallMs);
  summary.maxStallMs = round3(summary.maxStallMs);
  summary.elapsedMs = round3(now() - t0);
  summary.ok =
    summary.error === null &&
    summary.iterations === config.iterations &&
    summary.lostPages === 0 &&
    summary.wrongValues === 0 &&
    summary.resetMismatches === 0 &&
    summary.badEntries === 0 &&
    summary.kernelWarnings === 0 &&
    summary.kernelBugs === 0;
  return summary;

  async function runIteration(k: number): Promise<IterationReport> {
    const tIter = now();
    const writes0 = sumVcpu('INSTRUCTIONS');
    const full0 = sumVcpu('RING_FULL_EXITS');
    const harvested0 = harvestedTotal();
    let collections = 0;
    const collect = (): void => {
      if (reaper) {
        reaper.reap(-1);
        reaper.drain(drainSink);
      } else {
        collector.collect(sink);
      }
      collections++;
    };
    oracle.beginIteration(k);
    Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, k);
    control.resumeAll();

    const toggle = hooks.toggleLog?.iteration === k ? hooks.toggleLog : undefined;
    let toggleStage = 0;
    let lastPeriodic = now();
    let lastProgress = now();
    let lastWrites = writes0;
    let first = true;
    for (;;) {
      const bell = control.doorbell();
      const stalled: number[] = [];
      for (let i = 0; i < config.vcpus; i++) {
        const st = control.state(i);
        if (st === VcpuState.RING_FULL_STALL) stalled.push(i);
        else if (st === VcpuState.DEAD) throw new Error(`vCPU ${i} thread died in iteration ${k}`);
      }
      const t = now();
      if (first || stalled.length > 0 || t - lastPeriodic >= config.harvestIntervalMs) {
        // Harvest + reset first, then release the stalled threads: QEMU's reaction to exit 31.
        collect();
        for (const i of stalled) control.wakeStalled(i);
        lastPeriodic = t;
        first = false;
      }
      if (toggle) {
        const frac = (t - tIter) / config.intervalMs;
        if (toggleStage === 0 && frac >= 1 / 3) {
          vm.setLogDirty(toggle.slotId, false);
          oracle.excludeSlot(encodeSlot(0, toggle.slotId));
          toggleStage = 1;
        } else if (toggleStage === 1 && frac >= 2 / 3) {
          vm.setLogDirty(toggle.slotId, true);
          toggleStage = 2;
        }
      }
      const writes = sumVcpu('INSTRUCTIONS');
      if (writes !== lastWrites) {
        lastWrites = writes;
        lastProgress = t;
      } else if (t - lastProgress > CONTROL_TIMEOUT_MS) {
        throw new Error(`no guest progress for ${CONTROL_TIMEOUT_MS} ms in iteration ${k} (${control.describe()})`);
      }
      // dirty_log_test's floor: at least 256 writes per iteration, whatever the interval.
      if (t - tIter >= config.intervalMs && writes - writes0 >= 256 && (!toggle || toggleStage === 2)) break;
      await control.waitDoorbell(bell, 1);
    }

    if ((config.mutants & Mutant.NO_FINAL_STOP) !== 0) {
      // Mutant: the "final" sync while the vCPUs still run; they are parked only afterwards.
      collect();
      recordPending();
      const verdict = oracle.verify();
      control.pauseAll();
      await control.waitAllParked(CONTROL_TIMEOUT_MS);
      return finish(verdict);
    }
    control.pauseAll();
    await control.waitAllParked(CONTROL_TIMEOUT_MS);
    collect();
    recordPending();
    return finish(oracle.verify());

    function recordPending(): void {
      const pending: PendingStore[] = [];
      for (let i = 0; i < config.vcpus; i++) {
        const b = vm.vcpuBlock(i);
        if (Atomics.load(b.i32, VcpuLayout.words.PENDING_VALID) === 1) {
          pending.push({
            vcpu: i,
            gfn: b.f64[VcpuLayout.floats.PENDING_GFN]!,
            value: Atomics.load(b.i32, VcpuLayout.words.PENDING_VALUE),
          });
        }
      }
      oracle.setPending(pending);
    }

    function finish(verdict: ReturnType<DirtyLogOracle['verify']>): IterationReport {
      summary.lostPages += verdict.lostPages;
      summary.wrongValues += verdict.wrongValues;
      summary.falsePositives += verdict.falsePositives;
      summary.duplicates += verdict.duplicates;
      summary.badEntries += verdict.badEntries;
      for (const d of verdict.details) if (summary.lost.length < 20) summary.lost.push(d);
      return {
        iteration: k,
        guestWrites: sumVcpu('INSTRUCTIONS') - writes0,
        entriesHarvested: harvestedTotal() - harvested0,
        ringFullExits: sumVcpu('RING_FULL_EXITS') - full0,
        collections,
        pagesReported: verdict.pagesReported,
        pagesChanged: verdict.pagesChanged,
        lostPages: verdict.lostPages,
        wrongValues: verdict.wrongValues,
        falsePositives: verdict.falsePositives,
        elapsedMs: round3(now() - tIter),
      };
    }
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
