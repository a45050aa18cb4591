/**
 * One free-running stress run: `runDirtyLog` with the scenario's perturbation installed in
 * every vCPU worker and in this thread, a harvester variant in userspace's place, and seeded
 * forced harvests and kicks; then its outcomes.
 */
import { userspaceFaults } from '../../userspace/faults.js';
import { WEDGED_VCPU } from '../../harness/wedge-detector.js';
import { type RunHooks, type RunSummary, runDirtyLog } from '../../harness/run.js';
import { Prng, deriveSeed } from '../../base/prng.js';
import { clearStepHook } from '../../kernel/step-hook.js';
import { clearCoverage, coverageBuffer, installCoverage, sumCoverage } from '../../kernel/coverage.js';
import { type RunCoverage, runCoverage } from '../coverage/campaign-coverage.js';
import { type Harvester, type HarvesterVariantStats, createHarvester } from '../harvesters/harvester-variants.js';
import { installStepPerturbation, perturbationSpec } from '../harvesters/step-perturbation.js';
import type { SpawnVcpuWorker } from '../../userspace/vcpu-worker-api.js';
import type { OutcomeKind } from '../outcome.js';
import type { FreeScenario } from './free-scenario.js';
import { percent } from '../draw.js';
import type { HarvesterDefinition } from '../../harvester/contract.js';
import { type HarvesterThreadSource, createUserCollector } from '../../harvester/create-user-collector.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';

export interface FreeRunResult {
  readonly scenario: FreeScenario;
  readonly summary: RunSummary;
  readonly variant: HarvesterVariantStats | null;
  readonly outcomes: OutcomeKind[];
  /** The edge states the run reached, over userspace and every vCPU and device thread. */
  readonly coverage: RunCoverage;
}

/** A stall this long is worth a look (it is not wrong: the machine may just be busy). */
const LONG_STALL_MS = 20;
/** The stream of the poll's draws, apart from the scenario's (free-scenario.ts). */
const POLL_STREAM = 0x90;

export async function runFreeScenario(
  scenario: FreeScenario,
  mutants: number,
  spawn: SpawnVcpuWorker,
  user?: { readonly definition: HarvesterDefinition; readonly source: HarvesterThreadSource },
): Promise<FreeRunResult> {
  let harvester: Harvester | null = null;
  const poll = new Prng(deriveSeed(scenario.seed, POLL_STREAM));
  const vcpus = scenario.config.vcpus;
  const coverage = coverageBuffer(1 + vcpus + (scenario.config.deviceWriters ?? 0));
  const hooks: RunHooks = {
    spawn,
    coverage,
    ...(user?.definition.ringSpace && { ringSpace: user.definition.ringSpace }),
    ...(scenario.vcpuPerturbation ? { vcpuStepHook: perturbationSpec(scenario.vcpuPerturbation) } : {}),
    createCollector: (vm, n, slots, config, reaper) => {
      if (user !== undefined) {
        harvester = userHarvester(user.definition, { ...user.source, coverage }, vm, n, slots);
        return harvester.collector;
      }
      harvester = createHarvester(scenario.harvester, config.log, vm, n, slots, config.clearChunkPages, userspaceFaults(mutants), 0, reaper);
      return harvester.collector;
    },
    onPoll: () => {
      const harvest = percent(poll, scenario.forcedHarvestPercent);
      const kick = percent(poll, scenario.kickPercent) ? poll.below(vcpus) : -1;
      return harvest || kick >= 0 ? { harvest, kick } : null;
    },
  };
  // Userspace records in this thread, from before the run builds its VM (reset-batch.ts).
  installCoverage(coverage, 0);
  if (scenario.userPerturbation) installStepPerturbation(scenario.userPerturbation);
  let summary: RunSummary;
  try {
    summary = await runDirtyLog({ ...scenario.config, mutants }, hooks);
  } finally {
    if (scenario.userPerturbation) clearStepHook();
    clearCoverage();
  }
  const variant = (harvester as Harvester | null)?.variantStats() ?? null;
  return { scenario, summary, variant, outcomes: classifyFree(summary, variant), coverage: runCoverage(sumCoverage(coverage)) };
}

/** A user's harvester (--harvester) as the run's harvester. */
function userHarvester(def: HarvesterDefinition, source: HarvesterThreadSource, vm: Vm, vcpus: number, slots: readonly Memslot[]): Harvester {
  const collector = createUserCollector(def, source, vm, vcpus, slots);
  const none = { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 };
  return { collector, variantStats: () => ({ ...none, harvesterErrnos: collector.user.ioctlErrors }) };
}

export function classifyFree(s: RunSummary, variant: HarvesterVariantStats | null): OutcomeKind[] {
  const k: OutcomeKind[] = [];
  if (s.lostPages > 0) k.push('lost-page');
  if (s.copyMismatches > 0) k.push('copy-mismatch');
  if (s.wrongValues > 0) k.push('wrong-value');
  if (s.resetMismatches > 0) k.push('reset-mismatch');
  if (s.badEntries > 0) k.push('bad-entry');
  if (s.kernelBugs > 0) k.push('kernel-bug');
  if (s.kernelWarnings > 0) k.push('kernel-warning');
  if (s.pageTrack && !s.pageTrack.ok) k.push('track-violation');
  if (s.error !== null) {
    // A wedged ring (wedge-detector.ts) or, as a backstop, no guest progress at all.
    k.push(s.error.includes(WEDGED_VCPU) || s.error.includes('no guest progress') ? 'wedged-vcpu' : 'harness-error');
  }
  if (s.ringFullExits > 0 && s.path === 'fault') k.push('ring-full-page');
  if (s.duplicateRecords > 0) k.push('duplicates');
  if (s.maxStallMs >= LONG_STALL_MS) k.push('long-stall');
  if (variant && variant.hostileRewrites > 0) k.push('hostile-userspace');
  if (variant && variant.unalignedRefused > 0) k.push('unaligned-clear-refused');
  if (variant && (variant.harvesterErrnos ?? 0) > 0) k.push('harvester-errno');
  return k;
}
