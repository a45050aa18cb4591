/**
 * The memory-model matrix: for every memory profile × ring capability × harvester, a controlled
 * campaign of ring scenarios whose resets run on a thread of their own while the harvester
 * keeps harvesting (the situation of QEMU's 2022 fix), stopping at its first forbidden run. It
 * shows which combinations lose pages: only arm64 with a pre-2022 side (the original
 * capability's plain accesses in the kernel, or a harvester storing RESET or loading flags
 * plainly); x86's TSO makes every combination correct.
 */
import type { MemoryModel } from '../kernel/wmm/ordering.js';
import type { StressHarness } from './campaign.js';
import { type CampaignSpec, campaignSpec } from './campaign-spec.js';
import type { RingCap, ScenarioRequest } from './controlled/scenario.js';
import { mutantProfile } from './mutant-catalog.js';
import type { OutcomeKind } from './outcome.js';

export const MATRIX_MODELS: readonly MemoryModel[] = ['sc', 'x86', 'arm64'];
export const MATRIX_CAPS: readonly RingCap[] = ['ring', 'ring-acqrel'];
/** The harvesters: acquire/release, and the two pre-2022 ones (userspace faults). */
export const MATRIX_HARVESTERS = ['acq-rel', 'harvest-relaxed-reset', 'harvest-relaxed-flags'] as const;
export type MatrixHarvester = (typeof MATRIX_HARVESTERS)[number];

export interface MatrixCell {
  readonly model: MemoryModel;
  readonly ringCap: RingCap;
  readonly harvester: MatrixHarvester;
  readonly runs: number;
  /** The first forbidden run (1-based) and what it showed, or null: none in `runs`. */
  readonly firstForbidden: number | null;
  readonly outcome: OutcomeKind | null;
  readonly seed: number | null;
}

const SCENARIOS: ScenarioRequest = { shape: 'micro', log: 'ring', harvester: 'standard', emulated: false, resetter: 'thread' };

function cellSpec(model: MemoryModel, ringCap: RingCap, harvester: MatrixHarvester, runs: number, seed: number): CampaignSpec {
  const fault = harvester === 'acq-rel' ? null : mutantProfile(harvester)!;
  return campaignSpec('controlled', {
    runs,
    seed,
    memoryModel: model,
    ringCap,
    resetter: 'thread',
    stopAtFirstForbidden: true,
    scenario: SCENARIOS,
    // The fault's own profile asks for arm64 and the ACQ_REL ring: here the cell decides both.
    mutant: fault === null ? null : { ...fault, controlled: { ...SCENARIOS, ringCap }, memoryModel: undefined },
    log: 'ring',
  });
}

/** Every cell, one campaign each, in table order; `onCell` after each. */
/** The cells in order; once `stop` fires, the cells done so far (the one under way ends as its campaign does, and is left out). */
export async function runMemoryMatrix(harness: StressHarness, runs: number, seed: number, onCell?: (c: MatrixCell) => void, stop?: AbortSignal): Promise<MatrixCell[]> {
  const cells: MatrixCell[] = [];
  for (const model of MATRIX_MODELS) {
    for (const ringCap of MATRIX_CAPS) {
      for (const harvester of MATRIX_HARVESTERS) {
        if (stop?.aborted === true) return cells;
        const r = await harness.runCampaign(cellSpec(model, ringCap, harvester, runs, seed), undefined, stop);
        if (r.interrupted) return cells;
        const first = r.records.find((x) => x.cls === 'forbidden') ?? null;
        const cell = { model, ringCap, harvester, runs: r.runs, firstForbidden: r.caughtAtRun, outcome: first?.outcome ?? null, seed: first?.seed ?? null };
        cells.push(cell);
        onCell?.(cell);
      }
    }
  }
  return cells;
}

/** A cell's outcome in words. */
export function cellOutcome(c: MatrixCell): string {
  return c.firstForbidden === null ? `0 forbidden in ${c.runs} runs` : `${c.outcome} at run ${c.firstForbidden} (seed ${c.seed})`;
}
