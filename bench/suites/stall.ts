/**
 * 5. Stall latency: from a vCPU's KVM_EXIT_DIRTY_RING_FULL to its next entry into KVM_RUN,
 * measured in the vCPU worker thread itself (StallRecorder), with a real vCPU worker running the
 * `sequential` workload on a 64 MiB slot and a 256-entry ring (an exit every 192 new pages).
 *
 *  - self-reap (the default design with ring logging, RunConfig.selfReap): the vCPU thread
 *    harvests its own ring and resets under the reaper lock (SharedReaper), QEMU's reaction;
 *    this thread does what the run's userspace does meanwhile: every 2 ms (the default
 *    --harvest-interval-ms) a collection of the self-reaping collector (SelfReapLogCollector:
 *    reap every ring, drain the reaper's bitmaps), which contends for the same lock.
 *  - hand-off (`run --no-self-reap`, and the design with a user's harvester): the vCPU thread
 *    spins 4000 polls on its WAKE word, then Atomics.wait()s; userspace (this main thread)
 *    learns of the stall through the doorbell and Atomics.waitAsync, harvests, resets and wakes
 *    it — the harness's reaction exactly (src/harness/iteration-loop.ts).
 * Baselines, measured here in the same run between this thread and a worker: an
 * Atomics.wait/notify round trip (both sides block) and a spin round trip (both sides poll).
 * Idle cost: the whole process's CPU time over a quiet window, as a share of one core — with
 * the vCPU parked, and (hand-off design) with the vCPU stalled on a full ring that nobody reaps.
 */
import { KVM_EXIT_DIRTY_RING_FULL, PAGE_SIZE, encodeSlot } from '../../src/abi/constants.js';
import { GuestGlobalsLayout } from '../../src/guest/guest-memory.js';
import { VcpuState } from '../../src/kernel/vcpu-layout.js';
import { harvestRing } from '../../src/kernel/dirty-ring.js';
import { Vcpu } from '../../src/kernel/vcpu.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { sleep } from '../../src/platform/async-wait.js';
import { RingCollector } from '../../src/userspace/ring-collector.js';
import { SharedReaper } from '../../src/userspace/self-reaper.js';
import { SelfReapLogCollector } from '../../src/userspace/log-collectors.js';
import { NO_FAULTS } from '../../src/userspace/faults.js';
import { StallRecorder } from '../../src/userspace/stall-recorder.js';
import { GuestFleet, buildGuestVm, describeFailure } from '../../src/userspace/guest-fleet.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { ListProgram, strideGfns } from '../lib/guest.js';
import { summarize } from '../lib/stats.js';
import { BenchTimeoutError, now } from '../lib/timing.js';
import { endBenchWorker, spawnBenchWorker } from '../lib/workers.js';

const SLOT_PAGES = 16384;
const BASE_GFN = 1 << 18;
const RING_ENTRIES = 256;
const TIMEOUT_MS = 30_000;

const STALL_WAIT_MS = 5000;
/**
 * Ring-full exits before the recorded ones. A fresh vCPU worker takes 600–1200 exits here
 * before V8 has optimized its exit-31 path: the first ones take 19–25 µs with self-reap, the
 * steady state 8.7–9 µs (runs of 12 000 exits, medians per 600). With 100 warm-up exits those
 * slow ones are a quarter of the 4000 recorded and the median moves with them; the figure is
 * the steady state, as every other figure of the bench.
 */
const WARM_EXITS = 2000;
/** The run's default --harvest-interval-ms: how often userspace collects while the vCPUs run. */
const HARVEST_INTERVAL_MS = 2;

type Design = 'self-reap' | 'hand-off';

/** Round trips main thread ↔ worker, in µs. */
async function roundTrips(mode: 'wait' | 'spin', count: number): Promise<number[]> {
  const buffer = new SharedArrayBuffer(8);
  const w = new Int32Array(buffer);
  const worker = await spawnBenchWorker('rtt', { buffer, mode });
  const out: number[] = [];
  try {
    for (let i = 1; i <= count + 50; i++) {
      const t0 = now();
      Atomics.store(w, 0, i);
      if (mode === 'wait') Atomics.notify(w, 0);
      const deadline = t0 + 5000;
      if (mode === 'wait') {
        while (Atomics.load(w, 1) !== i) {
          if (now() > deadline) throw new BenchTimeoutError('wait/notify round trip', 5000);
          Atomics.wait(w, 1, i - 1, 100);
        }
      } else {
        let polls = 0;
        while (Atomics.load(w, 1) !== i) {
          if ((++polls & 0xfff) === 0 && now() > deadline) throw new BenchTimeoutError('spin round trip', 5000);
        }
      }
      if (i > 50) out.push((now() - t0) * 1000);
    }
  } finally {
    Atomics.store(w, 0, -1);
    Atomics.notify(w, 0);
    await endBenchWorker(worker);
  }
  return out;
}

/** Share of one core the whole process used over `ms` of wall time. */
async function cpuShare(ms: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = now();
  await sleep(ms);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / (now() - t0);
}

interface DesignResult {
  readonly stallUs: number[];
  readonly idleParked: number[];
  readonly idleStalled: number[];
  readonly stalls: number;
}

/** The bench's guest: one vCPU, one 64 MiB slot at BASE_GFN (slot 1), a 256-entry ring. */
function stallGuest(): ReturnType<typeof buildGuestVm> {
  const built = buildGuestVm(
    { log: 'ring', ringEntries: RING_ENTRIES, ringWithBitmap: false, initiallySet: false, mutants: 0, memoryBytes: SLOT_PAGES * PAGE_SIZE, memslots: 1, vcpus: 1 },
    true,
  );
  const slot = built.slots[0]!;
  if (slot.baseGfn !== BASE_GFN || slot.pageCount !== SLOT_PAGES || slot.encodedSlot !== encodeSlot(0, 1)) {
    throw new Error(`stall: unexpected memslot ${slot.encodedSlot} at gfn ${slot.baseGfn} (${slot.pageCount} pages)`);
  }
  return built;
}

async function runDesign(design: Design, stalls: number, idleWindows: number): Promise<DesignResult> {
  const { vm, slots } = stallGuest();
  const fleet = new GuestFleet(vm, 1, 0, spawnNodeVcpuWorker);
  Atomics.store(fleet.globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
  const control = fleet.control;
  const samplesBuf = StallRecorder.createBuffer(WARM_EXITS + stalls + 1000);
  const recorder = new StallRecorder(samplesBuf);
  const reaperBuffers = design === 'self-reap' ? SharedReaper.createBuffers([{ encodedSlot: encodeSlot(0, 1), pageCount: SLOT_PAGES }]) : undefined;
  const reaper = reaperBuffers ? new SharedReaper(vm, reaperBuffers) : null;
  const selfReapCollector = reaper ? new SelfReapLogCollector(vm, reaper, slots, NO_FAULTS) : null;
  const collector = new RingCollector(vm, 1);
  const warm = WARM_EXITS;
  const idleParked: number[] = [];
  const idleStalled: number[] = [];
  const checkAlive = (what: string): void => {
    const failure = fleet.firstFailure();
    if (failure !== null) throw new Error(`${design}: the vCPU worker failed while ${what}: ${failure}`);
    if (control.state(0) === VcpuState.DEAD) throw new Error(`${design}: the vCPU thread died while ${what}`);
  };
  let error: unknown = null;
  try {
    // start() and shutdown() are bounded (CONTROL_TIMEOUT_MS, and 5 s per join).
    await fleet.start({
      workload: { kind: 'sequential', seed: 1, ranges: [{ baseGfn: BASE_GFN, pageCount: SLOT_PAGES }], burstPages: 1, burstPercent: 0 },
      vcpuOptions: () => ({ emulateAllStores: false, ...(reaperBuffers ? { selfReap: reaperBuffers } : {}), stallSamples: samplesBuf }),
    });
    for (let i = 0; i < idleWindows; i++) idleParked.push(await cpuShare(200));
    control.resume(0);
    const deadline = now() + TIMEOUT_MS;
    const noop = (): void => {};
    while (recorder.recorded < warm + stalls) {
      if (now() > deadline) throw new BenchTimeoutError(`${design}: ${recorder.recorded} of ${warm + stalls} ring-full exits`, TIMEOUT_MS);
      checkAlive('exiting on a full ring');
      if (selfReapCollector === null) {
        // The harness's reaction (src/harness/iteration-loop.ts): on the doorbell, harvest +
        // reset, then release the stalled thread.
        const bell = control.doorbell();
        if (control.state(0) === VcpuState.RING_FULL_STALL) {
          collector.collect(noop);
          control.wakeStalled(0);
        }
        await control.waitDoorbell(bell, 1);
      } else {
        // The run's periodic collection: reap every ring and drain what the vCPU reaped.
        selfReapCollector.collect(noop, false);
        await sleep(HARVEST_INTERVAL_MS);
      }
    }
    if (design === 'hand-off') {
      // Nobody harvests now: the vCPU fills its ring, stalls, spins briefly, then blocks.
      const until = now() + STALL_WAIT_MS;
      while (control.state(0) !== VcpuState.RING_FULL_STALL) {
        checkAlive('filling its ring');
        if (now() > until) throw new BenchTimeoutError(`${design}: the vCPU to stall on a full ring nobody reaps`, STALL_WAIT_MS);
        await sleep(1);
      }
      for (let i = 0; i < idleWindows; i++) idleStalled.push(await cpuShare(200));
    }
    control.pauseAll();
    // A stalled thread sees the pause through CONTROL and WAKE.
    await control.waitAllParked(TIMEOUT_MS);
    if (reaper && selfReapCollector) {
      selfReapCollector.collect(noop, true);
      const st = reaper.stats();
      if (st.mismatches !== 0 || st.badEntries !== 0) throw new Error(`self-reap: ${st.mismatches} reset mismatches, ${st.badEntries} bad entries`);
    } else {
      collector.collect(noop);
      if (collector.mismatches.length > 0) throw new Error('hand-off: reset count mismatches');
    }
  } catch (e) {
    error = e;
  }
  const shutdownError = await fleet.shutdown();
  if (error !== null) throw error instanceof Error ? new Error(describeFailure(error, fleet), { cause: error }) : error;
  if (shutdownError !== null) throw new Error(`${design}: ${shutdownError}`);
  return { stallUs: recorder.samples(warm).slice(0, stalls).map((ns) => ns / 1000), idleParked, idleStalled, stalls: recorder.recorded };
}

/** µs to harvest and reset one ring-full exit's entries, with no thread hand-off at all. */
function harvestResetFloor(rounds: number): number[] {
  const { vm } = stallGuest();
  const vcpu = new Vcpu(vm, 0);
  const program = new ListProgram();
  const gfns = new Float64Array(400);
  const views = vm.mmapRing(0);
  const cursor = { fetchIndex: 0 };
  const out: number[] = [];
  let page = 0;
  for (let r = 0; r < rounds + 50; r++) {
    if (page + 400 > SLOT_PAGES) page = 0;
    const exit = vcpu.run(program.set(strideGfns(gfns, BASE_GFN + page, 400, 1), 400));
    if (exit !== KVM_EXIT_DIRTY_RING_FULL) throw new Error(`floor: KVM_RUN returned ${exit}, expected a ring-full exit`);
    page += 400;
    const t0 = now();
    const n = harvestRing(views, cursor, RING_ENTRIES, () => {});
    const reset = vm.resetDirtyRings();
    const us = (now() - t0) * 1000;
    if (reset !== n) throw new Error(`floor: reset ${reset} of ${n}`);
    if (r >= 50) out.push(us);
  }
  return out;
}

export const stallSuite: Suite = {
  id: 'stall',
  title: '5. stall latency',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const stalls = ctx.quick ? 400 : 4000;
    const trips = ctx.quick ? 400 : 3000;
    const idleWindows = ctx.quick ? 3 : 5;
    const waitRtt = await roundTrips('wait', trips);
    const spinRtt = await roundTrips('spin', trips);
    const med = (xs: readonly number[]): number => summarize(xs).median;
    ctx.log(`  round trips: wait/notify ${med(waitRtt).toFixed(1)} µs, spin ${med(spinRtt).toFixed(2)} µs`);
    for (const design of ['self-reap', 'hand-off'] as const) {
      const r = await runDesign(design, stalls, idleWindows);
      ctx.log(`  ${design}: median ${med(r.stallUs).toFixed(1)} µs over ${r.stallUs.length} ring-full exits`);
      const label = design === 'self-reap' ? 'self-reap (default design)' : 'hand-off design (--no-self-reap)';
      const extra = { ringEntries: RING_ENTRIES, exits: r.stalls };
      // Ratio against the median of each round trip (the samples are per event, not paired).
      // The absolute 10 µs target is the default design's, scored once, on its wait/notify row;
      // the hand-off is measured beside it for comparison.
      ctx.reporter.add({
        id: `stall.${design}.vs-wait-notify`,
        section,
        name: `exit 31 → back in KVM_RUN, ${label} vs wait/notify RTT`,
        unit: 'us',
        better: 'lower',
        samples: r.stallUs,
        baseline: { name: 'Atomics.wait/notify RTT', samples: r.stallUs.map(() => med(waitRtt)) },
        ...(design === 'self-reap' ? { target: { text: 'median < 10 µs', maxValue: 10 } } : {}),
        extra,
        note: 'baseline column: the median round trip; its spread is in the diag figure',
      });
      ctx.reporter.add({
        id: `stall.${design}.vs-spin`,
        section,
        name: `exit 31 → back in KVM_RUN, ${label} vs spin RTT`,
        unit: 'us',
        better: 'lower',
        samples: r.stallUs,
        baseline: { name: 'spin RTT', samples: r.stallUs.map(() => med(spinRtt)) },
        extra,
      });
      ctx.reporter.add({
        id: `stall.${design}.idle-parked`,
        section,
        name: `${design}: process CPU, vCPU parked`,
        unit: '% of a core',
        better: 'lower',
        samples: r.idleParked.map((x) => x * 100),
        target: { text: '< 10 % of a core when idle', maxValue: 10 },
      });
      if (r.idleStalled.length > 0) {
        ctx.reporter.add({
          id: `stall.${design}.idle-stalled`,
          section,
          name: `${design}: process CPU, vCPU stalled, nobody reaps`,
          unit: '% of a core',
          better: 'lower',
          samples: r.idleStalled.map((x) => x * 100),
          target: { text: '< 10 % of a core when idle', maxValue: 10 },
        });
      }
    }
    const floor = harvestResetFloor(ctx.quick ? 300 : 1500);
    ctx.log(`  floor: in-thread harvest + reset of a full 256-entry ring ${med(floor).toFixed(1)} µs`);
    ctx.reporter.add({
      id: 'stall.floor-harvest-reset',
      section,
      name: 'floor: harvest + reset of one exit\'s 192 entries, one thread',
      unit: 'us',
      better: 'lower',
      samples: floor,
      note: 'what any reaper must do before the vCPU can re-enter; no thread hand-off included',
    });
    ctx.reporter.add({ id: 'stall.rtt-wait-notify', section, name: 'Atomics.wait/notify round trip (main ↔ worker)', unit: 'us', better: 'lower', samples: waitRtt });
    ctx.reporter.add({ id: 'stall.rtt-spin', section, name: 'spin round trip (main ↔ worker)', unit: 'us', better: 'lower', samples: spinRtt });
  },
};
