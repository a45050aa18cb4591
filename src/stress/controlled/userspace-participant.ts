/**
 * Userspace under the controlled scheduler: the harvester and the run controller of a free
 * run (harness/run.ts), with every wait turned into a park and every decision point a step
 * the scheduler places. Per iteration k:
 *
 *   publish k and resume the vCPUs;
 *   `collections` times: collect (harvest + reset / GET / GET + CLEAR) and copy, release
 *     stalled vCPUs — each at a moment the scheduler picks;
 *   with `drain`: until every vCPU has halted, wait for state changes and collect for stalls;
 *   final sync: stop every vCPU (kick + pause, wait until parked), collect, then verify with
 *     the oracle and the byte-exact destination check.
 *
 * The `no-final-stop` mutant collects and verifies before stopping, as in free runs.
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { VcpuLayout, VcpuState } from '../../kernel/vcpu-layout.js';
import { type LostPage, DirtyLogOracle, type PendingStore } from '../../checker/oracle.js';
import { RingWedgeDetector } from '../../harness/wedge-detector.js';
import { userspaceFaults } from '../../userspace/faults.js';
import type { Vm } from '../../kernel/vm.js';
import { type CopyMismatch, DirtyPageCopier } from '../../userspace/dirty-copier.js';
import { type HarvesterVariantStats, createHarvester } from '../harvesters/harvester-variants.js';
import { VcpuControlPlane } from '../../userspace/vcpu-control.js';
import { ControlStep } from './control-steps.js';
import { dataSlot } from './controlled-vm.js';
import { interposeIoctls } from './ioctl-points.js';
import type { ControlledRunConfig } from './participant-api.js';
import { scenarioRounds } from './scenario.js';
import type { Park } from './vcpu-participant.js';

const F = VcpuLayout.floats;
const W = VcpuLayout.words;
/** Details kept per run (counts are complete). */
const MAX_DETAILS = 5;

export interface UserspaceReport {
  lostPages: number;
  wrongValues: number;
  copyMismatches: number;
  resetMismatches: number;
  badEntries: number;
  /** Records of a page already collected in the same collection (racing rings, emulated path). */
  duplicateRecords: number;
  variant: HarvesterVariantStats;
  /** Set when a vCPU was found wedged (its ring cannot be drained). */
  wedged: string | null;
  lost: LostPage[];
  mismatches: CopyMismatch[];
}

export function emptyUserspaceReport(): UserspaceReport {
  return {
    lostPages: 0,
    wrongValues: 0,
    copyMismatches: 0,
    resetMismatches: 0,
    badEntries: 0,
    duplicateRecords: 0,
    variant: { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 },
    wedged: null,
    lost: [],
    mismatches: [],
  };
}

class WedgedVcpu extends Error {}

/** Runs userspace's program, filling `report` as it goes (so an aborted run keeps what it saw). */
export function runUserspaceParticipant(
  vm: Vm,
  config: Pick<ControlledRunConfig, 'scenario' | 'seed' | 'mutants'>,
  globals: Int32Array,
  park: Park,
  report: UserspaceReport,
): void {
  const { scenario, seed } = config;
  const faults = userspaceFaults(config.mutants);
  const n = scenario.vcpus;
  const slot = dataSlot(vm);
  const slots = [slot];
  const control = new VcpuControlPlane(vm, n);
  interposeIoctls(vm, park);
  const harvester = createHarvester(scenario.harvester, scenario.log, vm, n, slots, scenario.clearChunkPages, faults);
  const collector = harvester.collector;
  const copier = new DirtyPageCopier(slots);
  const oracle = new DirtyLogOracle(
    [{ encodedSlot: slot.encodedSlot, id: slot.id, baseGfn: slot.baseGfn, pageCount: slot.pageCount, mem32: slot.mem32 }],
    seed,
  );
  const sink = (s: number, offLo: number, offHi: number): void => {
    oracle.report(s, offLo, offHi);
    copier.copy(s, offLo, offHi);
  };
  const detector = new RingWedgeDetector();
  /** Per vCPU: exit-31 stalls already released (its RING_FULL_EXITS count at the last release). */
  const released = new Float64Array(n);
  const exits = (i: number): number => vm.vcpuBlock(i).f64[F.RING_FULL_EXITS]!;
  const unreleasedStalls = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (control.state(i) === VcpuState.RING_FULL_STALL && exits(i) > released[i]!) out.push(i);
    }
    return out;
  };
  const collect = (final: boolean): void => {
    const stalled = final ? [] : unreleasedStalls();
    detector.arm(vm, stalled);
    copier.beginRound();
    collector.collect(sink, final);
    const wedged = detector.check(vm, (i) => control.state(i) === VcpuState.RING_FULL_STALL);
    if (wedged !== null) {
      report.wedged = wedged;
      throw new WedgedVcpu(wedged);
    }
    // QEMU's reaction to exit 31: harvest and reset first, then let the vCPU go.
    for (const i of stalled) {
      released[i] = exits(i);
      control.wakeStalled(i);
    }
  };
  const verify = (): void => {
    const verdict = oracle.verify();
    const mismatch = copier.compare();
    report.lostPages += verdict.lostPages;
    report.wrongValues += verdict.wrongValues;
    report.badEntries += verdict.badEntries;
    report.copyMismatches += mismatch.mismatches;
    for (const d of verdict.details) if (report.lost.length < MAX_DETAILS) report.lost.push(d);
    for (const d of mismatch.details) if (report.mismatches.length < MAX_DETAILS) report.mismatches.push(d);
  };
  const recordPending = (): void => {
    const pending: PendingStore[] = [];
    for (let i = 0; i < n; i++) {
      const b = vm.vcpuBlock(i);
      if (Atomics.load(b.i32, W.PENDING_VALID) === 1) {
        pending.push({ vcpu: i, gfn: b.f64[F.PENDING_GFN]!, value: Atomics.load(b.i32, W.PENDING_VALUE) });
      }
    }
    oracle.setPending(pending);
  };
  const finalSync = (k: number): void => {
    park(ControlStep.USER_COLLECT, -1, 0);
    collect(true);
    recordPending();
    park(ControlStep.USER_VERIFY, k, 0);
    verify();
  };
  const stopAll = (k: number): void => {
    park(ControlStep.USER_PAUSE, k, 0);
    control.pauseAll();
    park(ControlStep.USER_WAIT_PARKED, 0, 0);
  };

  try {
    for (let k = 1; k <= scenarioRounds(scenario); k++) {
      park(ControlStep.USER_RESUME, k, 0);
      oracle.beginIteration(k);
      Atomics.store(globals, GuestGlobalsLayout.words.ITERATION, k);
      control.resumeAll();
      for (let c = 0; c < scenario.collections; c++) {
        park(ControlStep.USER_COLLECT, c, 0);
        collect(false);
      }
      while (scenario.drain) {
        const bell = control.doorbell();
        const dead = control.anyDeadThread();
        if (dead !== null) throw new Error(`${dead} died in iteration ${k}`);
        if (control.allVcpusIn(VcpuState.HALTED)) break;
        if (unreleasedStalls().length > 0) {
          park(ControlStep.USER_COLLECT, -1, 0);
          collect(false);
        } else {
          park(ControlStep.USER_WAIT_PROGRESS, bell, 0);
        }
      }
      if (faults.noFinalStop) {
        // Mutant: the "final" sync and the verification while the vCPUs may still run.
        finalSync(k);
        stopAll(k);
      } else {
        stopAll(k);
        finalSync(k);
      }
    }
  } catch (e) {
    if (!(e instanceof WedgedVcpu)) throw e;
  } finally {
    const cs = collector.stats;
    report.resetMismatches = cs.resetMismatches;
    report.duplicateRecords = copier.duplicates;
    report.variant = harvester.variantStats();
    control.terminateAll();
  }
}
