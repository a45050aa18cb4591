/**
 * A user harvester's thread of its own under the controlled scheduler (participant H<t>): it
 * serves every collection userspace asks for (controlled-harvester-collector.ts) by running the
 * harvester's `collect`, where every ring access, kvm.shared access and ioctl is a step point.
 * Each page is copied as it is reported (into userspace's destinations, shared) and noted in the
 * page ledger then, as userspace's own copy would be. The threads' barrier is a park: a thread
 * waits until the last one arrives, and leaves it having acquired what every other did before
 * (memory-sync.ts), so the barrier is a full fence among them under a weak model too.
 */
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { HarvesterRunError, UserHarvesterCollector } from '../../harvester/user-collector.js';
import { loadedHarvesterAt } from '../harvester-source.js';
import { REPORT_WORDS } from '../../harvester/thread-layout.js';
import { ThreadPageCopier } from '../../userspace/thread-page-copier.js';
import { ControlStep } from './control-steps.js';
import { dataSlots } from './controlled-vm.js';
import { interposeIoctls } from './ioctl-points.js';
import { PageLedgerWriter } from './page-ledger.js';
import type { ControlledRunConfig } from './participant-api.js';
import type { Park } from './vcpu-participant.js';
import { slotLayout } from './scenario-slots.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';

const S = UserspaceSharedLayout.words;
/** The run is over while this thread waited (another thread failed): it ends quietly. */
class Terminated extends Error {}

export function runControlledHarvesterThread(vm: Vm, config: ControlledRunConfig, shared: Int32Array, park: Park, t: number): void {
  const s = config.scenario;
  const buffers = config.harvesterThreads;
  if (s.userHarvester === undefined || s.userHarvesterThreads === undefined || buffers === null || buffers === undefined) throw new Error(`harvester thread ${t}: the scenario has no harvester threads`);
  const threads = s.userHarvesterThreads;
  interposeIoctls(vm, park);
  const slots: Memslot[] = dataSlots(vm, s);
  const copier = new ThreadPageCopier(slots, buffers.copy);
  const ledger = new PageLedgerWriter(config.ledger, slots[0]!, s.vcpus);
  const reports = new Uint32Array(buffers.reports[t]!);
  const capacity = Math.floor(reports.length / REPORT_WORDS);
  let count = 0;
  const push = (slot: number, offLo: number, offHi: number): void => {
    if (count >= capacity) throw new HarvesterRunError(`harvester thread ${t} reported more than ${capacity} pages in one collection`);
    const j = count++ * REPORT_WORDS;
    reports[j] = slot;
    reports[j + 1] = offLo;
    reports[j + 2] = offHi;
    reports[j + 3] = copier.copy(slot, offLo, offHi);
    ledger.emitted(slot, offLo, offHi);
  };
  const collector = new UserHarvesterCollector(loadedHarvesterAt(s.userHarvester), vm, s.vcpus, slots, {
    ringStart: slotLayout(s).ringStart,
    thread: { index: t, count: threads, barrier: () => waitBarrier(shared, threads, park) },
    checkResets: false,
    sharedWords: buffers.sharedWords,
  });
  let seen = 0;
  for (;;) {
    park(ControlStep.HARVESTER_WAIT_REQUEST, seen, 0);
    if (Atomics.load(shared, S.TERMINATE) !== 0) return;
    seen = Atomics.load(shared, S.HARVEST_REQUEST);
    count = 0;
    const before = { ...collector.stats, errnos: collector.user.ioctlErrors };
    try {
      collector.collect(push, Atomics.load(shared, S.HARVEST_FINAL) === 1, stalledVcpus(shared, s.vcpus));
    } catch (e) {
      // The run ended while this thread waited at its barrier (another thread threw).
      if (e instanceof Terminated || Atomics.load(shared, S.TERMINATE) !== 0) return;
      Atomics.compareExchange(shared, S.HARVEST_FAILED, 0, 1 + t);
      Atomics.add(shared, S.HARVESTS_DONE, 1);
      throw e;
    }
    const st = collector.stats;
    Atomics.add(shared, S.HARVEST_MARKS, collector.takeMarks());
    Atomics.add(shared, S.HARVEST_RESET_CALLS, st.resetCalls - before.resetCalls);
    Atomics.add(shared, S.HARVEST_ENTRIES_RESET, st.entriesReset - before.entriesReset);
    Atomics.add(shared, S.HARVEST_GET_CALLS, st.getCalls - before.getCalls);
    Atomics.add(shared, S.HARVEST_CLEAR_CALLS, st.clearCalls - before.clearCalls);
    Atomics.add(shared, S.HARVEST_IOCTL_ERRORS, collector.user.ioctlErrors - before.errnos);
    Atomics.store(shared, S.HARVEST_REPORTS_0 + t, count);
    Atomics.add(shared, S.HARVESTS_DONE, 1);
  }
}

function stalledVcpus(shared: Int32Array, vcpus: number): number[] {
  const mask = Atomics.load(shared, S.HARVEST_RING_FULL);
  const out: number[] = [];
  for (let v = 0; v < vcpus; v++) if ((mask & (1 << v)) !== 0) out.push(v);
  return out;
}

/** Sense-counting barrier: the last thread to arrive opens the next generation; every thread parks once. */
function waitBarrier(shared: Int32Array, threads: number, park: Park): void {
  const gen = Atomics.load(shared, S.HARVEST_BARRIER_GEN);
  if (Atomics.add(shared, S.HARVEST_BARRIER_ARRIVED, 1) + 1 === threads) {
    Atomics.store(shared, S.HARVEST_BARRIER_ARRIVED, 0);
    Atomics.add(shared, S.HARVEST_BARRIER_GEN, 1);
  }
  park(ControlStep.HARVESTER_BARRIER, gen, 0);
  if (Atomics.load(shared, S.HARVEST_BARRIER_GEN) === gen) throw new Terminated();
}
