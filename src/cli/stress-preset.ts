/**
 * `stress --preset soak`: a long, seeded campaign over every mode and every logging interface,
 * for a release or a new machine — each campaign of the plan in turn, then the totals.
 * The plan is fixed so that two soaks of the same seed make the same runs (controlled runs
 * give the same outcomes; free ones the machine's interleavings).
 */
import { ConfigError } from '../base/config-error.js';
import type { LogMode } from '../userspace/log-collectors.js';
import type { StressMode } from '../stress/stress-mode.js';

export interface PlannedCampaign {
  readonly mode: StressMode;
  readonly log: LogMode;
  readonly runs: number;
}

export const PRESETS = ['soak'] as const;
export type Preset = (typeof PRESETS)[number];

/**
 * 10 200 runs. Controlled runs are micro-runs (about 100 a second on one core); free runs are
 * real threads for tens of milliseconds each (about 5 a second), so they are fewer.
 */
const SOAK_CONTROLLED_RUNS = 3000;
const SOAK_FREE_RUNS = 400;
const LOGS: readonly LogMode[] = ['ring', 'bitmap', 'clear'];

export const SOAK_PLAN: readonly PlannedCampaign[] = [
  ...LOGS.map((log) => ({ mode: 'controlled' as const, log, runs: SOAK_CONTROLLED_RUNS })),
  ...LOGS.map((log) => ({ mode: 'free' as const, log, runs: SOAK_FREE_RUNS })),
];

/** What a preset decides itself: giving one of these with it is a contradiction. */
const PRESET_SETS = ['mode', 'log', 'mutant', 'strategy', 'matrix', 'replay', 'shard', 'memory-model', 'coverage-guided', 'min-coverage'] as const;

/** The plan of `--preset NAME`, or null without one; `runsEach` (--runs) scales it: that many runs per campaign. */
export function presetPlan(preset: string | undefined, values: Readonly<Record<string, unknown>>, runsEach: number | null): readonly PlannedCampaign[] | null {
  if (preset === undefined) return null;
  if (!(PRESETS as readonly string[]).includes(preset)) throw new ConfigError('--preset', preset, 'EINVAL', `must be one of ${PRESETS.join(', ')}`);
  for (const name of PRESET_SETS) {
    const v = values[name];
    if (v !== undefined && v !== false) throw new ConfigError(`--${name}`, v === true ? 'on' : String(v), 'EINVAL', `not used with --preset ${preset} (it runs ${describePlan(SOAK_PLAN)})`);
  }
  return runsEach === null ? SOAK_PLAN : SOAK_PLAN.map((c) => ({ ...c, runs: runsEach }));
}

export function describePlan(plan: readonly PlannedCampaign[]): string {
  const total = plan.reduce((n, c) => n + c.runs, 0);
  return `${total} runs: ${plan.map((c) => `${c.runs} ${c.mode} ${c.log}`).join(', ')}`;
}
