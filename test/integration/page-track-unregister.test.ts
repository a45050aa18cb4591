/**
 * Unregistering a page-track notifier while worker-thread vCPUs run: a probe notifier whose
 * callbacks block on a gate is caught in flight; unregister must not return while any of them
 * is inside, and once it has returned the probe must receive nothing more — while the vCPUs
 * keep making tracked writes. The grace-period mutant must be caught by the same check.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL } from '../../src/abi/constants.js';
import { GuestGlobalsLayout } from '../../src/guest/guest-memory.js';
import { SharedBlock } from '../../src/abi/layout.js';
import { VcpuState } from '../../src/kernel/vcpu-layout.js';
import { Mutant } from '../../src/userspace/known-bugs.js';
import { Vm } from '../../src/kernel/vm.js';
import { ProbeNotifier } from '../../src/pagetrack/probe-notifier.js';
import { sleep, withTimeout } from '../../src/platform/async-wait.js';
import { spawnNodeVcpuWorker } from '../../src/platform/node-vcpu-host.js';
import { NO_FAULTS } from '../../src/userspace/faults.js';
import { createCollector } from '../../src/userspace/log-collectors.js';
import { PageTrackControl } from '../../src/userspace/page-track-control.js';
import { VcpuControlPlane } from '../../src/userspace/vcpu-control.js';
import type { VcpuWorkerHandle } from '../../src/userspace/vcpu-worker-api.js';
import { SLOT_GFN } from '../helpers/vm-fixtures.js';
import { testSeed, timeoutAbove, withWatchdog } from '../helpers/watchdog.js';

/** A run's watchdog: below the sum of its inner bounds, so it is the one that fires. */
const WATCHDOG_MS = 60_000;
const PAGES = 256;
const VCPUS = 2;
const workers: VcpuWorkerHandle[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

/** A running VM: worker vCPUs on a random workload, userspace harvesting in the background. */
async function startVm(seed: number, mutants: number) {
  const vm = Vm.create({ mutants });
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 1024 * 16);
  const slot = vm.createMemslot({ id: 1, baseGfn: SLOT_GFN, pageCount: PAGES, logDirty: true });
  for (let i = 0; i < VCPUS; i++) vm.createVcpu();
  const globals = new SharedBlock(GuestGlobalsLayout);
  Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
  const control = new VcpuControlPlane(vm, VCPUS);
  for (let i = 0; i < VCPUS; i++) {
    const w = spawnNodeVcpuWorker(i);
    workers.push(w);
    await withTimeout(
      w.api.start({
        vm: vm.buffers(),
        vcpuIndex: i,
        vcpuCount: VCPUS,
        globals: globals.buffer,
        workload: { kind: 'random', seed, ranges: [{ baseGfn: SLOT_GFN, pageCount: PAGES }], burstPages: 4, burstPercent: 5 },
        preemptAfterMs: 5,
      }),
      15_000,
      `starting vCPU ${i}`,
    );
  }
  await control.waitAllParked(15_000);
  // One page in eight is write-tracked: plenty of tracked writes.
  for (let p = 0; p < PAGES; p += 8) vm.pageTrack.addGfn(SLOT_GFN + p);

  // Userspace's duty while the test waits: harvest + reset, release stalled vCPUs.
  const collector = createCollector('ring', vm, VCPUS, [slot], 1024, NO_FAULTS);
  let servicing = true;
  const service = (async () => {
    while (servicing) {
      const stalled: number[] = [];
      for (let i = 0; i < VCPUS; i++) if (control.state(i) === VcpuState.RING_FULL_STALL) stalled.push(i);
      collector.collect(() => {}, false);
      for (const i of stalled) control.wakeStalled(i);
      if (control.anyDeadThread() !== null) throw new Error(`${control.anyDeadThread()} died`);
      await sleep(1);
    }
  })();
  const stop = async (): Promise<void> => {
    servicing = false;
    await service;
    control.terminateAll();
  };
  return { vm, control, stop };
}

/** Wait (bounded) until `done()`; userspace keeps servicing meanwhile. */
async function until(done: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

interface Outcome {
  /** In-flight callbacks seen at the moment unregister resolved. */
  inFlightAtReturn: number;
  /** Whether unregister had resolved while a gated callback was still inside. */
  returnedWhileGated: boolean;
  deliveredAtReturn: number;
  deliveredLater: number;
  trackedWritesAfter: number;
  waited: boolean;
}

async function unregisterDuringRun(seed: number, mutants: number): Promise<Outcome> {
  const { vm, control, stop } = await startVm(seed, mutants);
  try {
    const probe = new ProbeNotifier(ProbeNotifier.allocate({ gateClosed: true }));
    const ctl = new PageTrackControl(vm, workers);
    const { id } = await ctl.register(probe.spec());
    control.resumeAll();
    await until(() => probe.inFlight >= 1, 'a probe callback to block on its gate');

    let settled = false;
    let inFlightAtReturn = -1;
    let deliveredAtReturn = -1;
    const unregistering = ctl.unregister(id).then((r) => {
      // Read at the very moment unregister returns.
      inFlightAtReturn = probe.inFlight;
      deliveredAtReturn = probe.delivered;
      settled = true;
      return r;
    });
    // Give unregister every chance to return early (it must not while the gate holds a callback).
    await sleep(150);
    const returnedWhileGated = settled && inFlightAtReturn > 0;
    probe.openGate();
    const result = await withTimeout(unregistering, 15_000, 'unregister');

    // The vCPUs keep making tracked writes; none of them may reach the probe now.
    const tracked0 = vm.pageTrack.stats().trackedWrites;
    await until(() => vm.pageTrack.stats().trackedWrites >= tracked0 + 500, '500 more tracked writes');
    control.pauseAll();
    await control.waitAllParked(15_000);
    return {
      inFlightAtReturn,
      returnedWhileGated,
      deliveredAtReturn,
      deliveredLater: probe.delivered,
      trackedWritesAfter: vm.pageTrack.stats().trackedWrites - tracked0,
      waited: result.waited,
    };
  } finally {
    await stop();
  }
}

describe('unregister while vCPUs run', () => {
  it('never returns while a callback is in flight, and nothing is delivered after it returns', async () => {
    const seed = testSeed(441);
    const o = await withWatchdog(seed, WATCHDOG_MS, 'unregister during a run', () => unregisterDuringRun(seed, 0));
    const context = `seed ${seed}: ${JSON.stringify(o)}`;
    expect(o.returnedWhileGated, context).toBe(false);
    expect(o.inFlightAtReturn, context).toBe(0);
    expect(o.waited, context).toBe(true);
    expect(o.trackedWritesAfter, context).toBeGreaterThanOrEqual(500);
    expect(o.deliveredLater, context).toBe(o.deliveredAtReturn);
  }, timeoutAbove(WATCHDOG_MS));

  it('catches the track-no-grace-period mutant: unregister returns with the callback still inside', async () => {
    const seed = testSeed(442);
    const o = await withWatchdog(seed, WATCHDOG_MS, 'unregister without a grace period', () =>
      unregisterDuringRun(seed, Mutant.TRACK_NO_GRACE_PERIOD),
    );
    const context = `seed ${seed}: ${JSON.stringify(o)}`;
    expect(o.returnedWhileGated, context).toBe(true);
    expect(o.inFlightAtReturn, context).toBeGreaterThan(0);
  }, timeoutAbove(WATCHDOG_MS));
});
