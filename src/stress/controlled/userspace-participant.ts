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
import { DirtyLogOracle, type PendingStore } from '../../checker/oracle.js';
import { RingWedgeDetector } from '../../harness/wedge-detector.js';
import { type UserspaceFaults, userspaceFaults } from '../../userspace/faults.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { DirtyPageCopier } from '../../userspace/dirty-copier.js';
import { type Harvester, createHarvester } from '../harvesters/harvester-variants.js';
import { VcpuControlPlane } from '../../userspace/vcpu-control.js';
import { ControlStep } from './control-steps.js';
import { dataSlots } from './controlled-vm.js';
import { interposeIoctls } from './ioctl-points.js';
import type { ControlledRunConfig } from './participant-api.js';
import { type ControlledScenario, scenarioRounds } from './scenario.js';
import { slotLayout } from './scenario-slots.js';
import { type UserspaceReport, addVerification } from './userspace-report.js';
import type { Park } from './vcpu-participant.js';
import { ResetThreadClient } from './reset-thread.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';
import { ThreadResetRingCollector } from './thread-reset-collector.js';
import { PageLedgerWriter } from './page-ledger.js';
import { loadedHarvesterAt } from '../harvester-source.js';
import { UserHarvesterCollector } from '../../harvester/user-collector.js';
import { ControlledThreadedCollector } from './controlled-harvester-collector.js';
import type { HarvesterRunBuffers } from './harvester-run-buffers.js';

const F = VcpuLayout.floats;

interface ThreadsOfItsOwn {
  readonly shared: Int32Array;
  readonly buffers: HarvesterRunBuffers;
}
const W = VcpuLayout.words;
/** USER_COLLECT's argument for a collection that is not one of the scenario's numbered ones. */
const UNNUMBERED_COLLECTION = -1;

class WedgedVcpu extends Error {}

/** Runs userspace's program, filling `report` as it goes (so an aborted run keeps what it saw). */
export function runUserspaceParticipant(
  vm: Vm,
  config: Pick<ControlledRunConfig, 'scenario' | 'seed' | 'mutants' | 'ledger' | 'harvesterThreads'>,
  globals: Int32Array,
  shared: Int32Array,
  park: Park,
  report: UserspaceReport,
): void {
  let program: UserspaceProgram;
  try {
    program = new UserspaceProgram(vm, config, globals, shared, park, report);
  } catch (e) {
    // The other userspace threads (a reset thread, a harvester's own) end at their next wait.
    Atomics.store(shared, UserspaceSharedLayout.words.TERMINATE, 1);
    throw e;
  }
  program.run();
}

/** The scenario's harvester; with a reset thread, the collector that hands it the resets. */
function buildHarvester(vm: Vm, scenario: ControlledScenario, slots: Memslot[], faults: UserspaceFaults, resets: ResetThreadClient, threads: ThreadsOfItsOwn | null): Harvester {
  const ringStart = slotLayout(scenario).ringStart;
  if (scenario.userHarvester !== undefined && threads !== null) {
    // On threads of its own (participants H0, ...): userspace asks them for each collection.
    const n = scenario.userHarvesterThreads!;
    const collector = new ControlledThreadedCollector(loadedHarvesterAt(scenario.userHarvester), n, vm, slots, threads.shared, resets.parkFn, threads.buffers);
    const none = { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 };
    return { collector, variantStats: () => ({ ...none, harvesterErrnos: collector.user.ioctlErrors }) };
  }
  if (scenario.userHarvester !== undefined) {
    // Loaded by the worker before the run (participant-main.ts).
    const collector = new UserHarvesterCollector(loadedHarvesterAt(scenario.userHarvester), vm, scenario.vcpus, slots, { ringStart });
    const none = { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 };
    return { collector, variantStats: () => ({ ...none, harvesterErrnos: collector.user.ioctlErrors }) };
  }
  if (scenario.resetter === 'thread') {
    const collector = new ThreadResetRingCollector(vm, scenario.vcpus, faults, resets, resets.parkFn, ringStart);
    return { collector, variantStats: () => ({ hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 }) };
  }
  return createHarvester(scenario.harvester, scenario.log, vm, scenario.vcpus, slots, scenario.clearChunkPages, faults, ringStart);
}

class UserspaceProgram {
  private readonly scenario: ControlledScenario;
  private readonly faults: UserspaceFaults;
  private readonly vcpus: number;
  private readonly control: VcpuControlPlane;
  private readonly harvester: Harvester;
  private readonly copier: DirtyPageCopier;
  private readonly oracle: DirtyLogOracle;
  private readonly detector = new RingWedgeDetector();
  private readonly resets: ResetThreadClient;
  private readonly ledger: PageLedgerWriter;
  /** Per vCPU: exit-31 stalls already released (its RING_FULL_EXITS count at the last release). */
  private readonly released: Float64Array;

  constructor(
    private readonly vm: Vm,
    config: Pick<ControlledRunConfig, 'scenario' | 'seed' | 'mutants' | 'ledger' | 'harvesterThreads'>,
    private readonly globals: Int32Array,
    shared: Int32Array,
    private readonly park: Park,
    private readonly report: UserspaceReport,
  ) {
    const scenario = config.scenario;
    this.scenario = scenario;
    this.faults = userspaceFaults(config.mutants);
    this.vcpus = scenario.vcpus;
    const slots = dataSlots(vm, scenario);
    this.control = new VcpuControlPlane(vm, this.vcpus);
    // Before the harvester exists, so that every ioctl it makes is a scheduling point.
    interposeIoctls(vm, park);
    this.resets = new ResetThreadClient(shared, park);
    const buffers = config.harvesterThreads ?? null;
    this.harvester = buildHarvester(vm, scenario, slots, this.faults, this.resets, buffers === null ? null : { shared, buffers });
    this.copier = new DirtyPageCopier(slots, buffers?.copy);
    // Pages a harvester thread reports are copied (and noted in the ledger) there and then.
    this.harvester.collector.copyOnReport?.(this.copier, this.reportToOracle);
    // The per-step invariant follows the first data memslot (docs/WEAK-MEMORY.md); the oracle every slot.
    this.ledger = new PageLedgerWriter(config.ledger, slots[0]!, this.vcpus);
    const oracleSlots = slots.map((s) => ({ encodedSlot: s.encodedSlot, id: s.id, baseGfn: s.baseGfn, pageCount: s.pageCount, mem32: s.mem32 }));
    this.oracle = new DirtyLogOracle(oracleSlots, config.seed);
    this.released = new Float64Array(this.vcpus);
  }

  run(): void {
    try {
      for (let k = 1; k <= scenarioRounds(this.scenario); k++) this.iteration(k);
    } catch (e) {
      if (!(e instanceof WedgedVcpu)) throw e;
    } finally {
      this.finish();
    }
  }

  private iteration(k: number): void {
    this.park(ControlStep.USER_RESUME, k, 0);
    this.oracle.beginIteration(k);
    Atomics.store(this.globals, GuestGlobalsLayout.words.ITERATION, k);
    this.control.resumeAll();
    for (let c = 0; c < this.scenario.collections; c++) {
      this.park(ControlStep.USER_COLLECT, c, 0);
      this.collect(false);
    }
    if (this.scenario.drain) this.drain(k);
    if (this.faults.noFinalStop) {
      // Mutant: the "final" sync and the verification while the vCPUs may still run.
      this.finalSync(k);
      this.stopAll(k);
    } else {
      this.stopAll(k);
      this.finalSync(k);
    }
  }

  /** Until every vCPU has halted: collect for the stalled ones, else wait for a state change. */
  private drain(k: number): void {
    for (;;) {
      const bell = this.control.doorbell();
      const dead = this.control.anyDeadThread();
      if (dead !== null) throw new Error(`${dead} died in iteration ${k}`);
      if (this.control.allVcpusIn(VcpuState.HALTED)) return;
      if (this.unreleasedStalls().length > 0) {
        this.park(ControlStep.USER_COLLECT, UNNUMBERED_COLLECTION, 0);
        this.collect(false);
      } else {
        this.park(ControlStep.USER_WAIT_PROGRESS, bell, 0);
      }
    }
  }

  /** Stop every vCPU: kick and pause them, then wait until all are parked. */
  private stopAll(k: number): void {
    this.park(ControlStep.USER_PAUSE, k, 0);
    this.control.pauseAll();
    this.park(ControlStep.USER_WAIT_PARKED, 0, 0);
  }

  /** The iteration's last collection, then the oracle and the destination check. */
  private finalSync(k: number): void {
    this.park(ControlStep.USER_COLLECT, UNNUMBERED_COLLECTION, 0);
    this.collect(true);
    this.recordPending();
    this.park(ControlStep.USER_VERIFY, k, 0);
    addVerification(this.report, this.oracle.verify(), this.copier.compare());
  }

  private collect(final: boolean): void {
    const stalled = final ? [] : this.unreleasedStalls();
    this.detector.arm(this.vm, stalled);
    this.copier.beginRound();
    this.harvester.collector.collect(this.sink, final, stalled);
    const wedged = this.detector.check(this.vm, (i) => this.control.state(i) === VcpuState.RING_FULL_STALL);
    if (wedged !== null) {
      this.report.wedged = wedged;
      throw new WedgedVcpu(wedged);
    }
    // QEMU's reaction to exit 31: harvest and reset first, then let the vCPU go.
    for (const i of stalled) {
      this.released[i] = this.ringFullExits(i);
      this.control.wakeStalled(i);
    }
  }

  private readonly reportToOracle = (s: number, offLo: number, offHi: number): void => {
    this.oracle.report(s, offLo, offHi);
  };

  /** Every collected page goes to the oracle and to the destination copy. */
  private readonly sink = (s: number, offLo: number, offHi: number): void => {
    this.oracle.report(s, offLo, offHi);
    this.copier.copy(s, offLo, offHi);
    this.ledger.emitted(s, offLo, offHi);
  };

  /** vCPUs stalled on a full ring (exit 31) that no collection has released yet. */
  private unreleasedStalls(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.vcpus; i++) {
      if (this.control.state(i) === VcpuState.RING_FULL_STALL && this.ringFullExits(i) > this.released[i]!) out.push(i);
    }
    return out;
  }

  private ringFullExits(i: number): number {
    return this.vm.vcpuBlock(i).f64[F.RING_FULL_EXITS]!;
  }

  /** Instructions the stop interrupted: their stores happen next iteration, and the oracle must know. */
  private recordPending(): void {
    const pending: PendingStore[] = [];
    for (let i = 0; i < this.vcpus; i++) {
      const b = this.vm.vcpuBlock(i);
      if (Atomics.load(b.i32, W.PENDING_VALID) === 1) {
        pending.push({ vcpu: i, gfn: b.f64[F.PENDING_GFN]!, value: Atomics.load(b.i32, W.PENDING_VALUE) });
      }
    }
    this.oracle.setPending(pending);
  }

  /** Whatever ended the program: the harvester's counts go to the report, every vCPU thread ends. */
  private finish(): void {
    this.report.resetMismatches = this.harvester.collector.stats.resetMismatches;
    this.report.duplicateRecords = this.copier.duplicates;
    this.report.variant = this.harvester.variantStats();
    this.control.terminateAll();
    this.resets.terminate();
  }
}
