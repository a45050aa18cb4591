/**
 * `dirtyring stress --shard`: `i/n` checked against the campaign, and `auto`: the shard from
 * the environment a job runner gives each of its parallel copies, so that one manifest or
 * pipeline line starts every shard. Conventions, first match:
 *
 *   DIRTYRING_SHARD=i/n                       explicit, 1-based (as --shard)
 *   JOB_COMPLETION_INDEX + DIRTYRING_SHARD_COUNT
 *                                             Kubernetes Indexed Job: the index is 0-based; the
 *                                             Job does not publish its completions, so the
 *                                             manifest sets the count (docs/CAMPAIGNS.md)
 *   CI_NODE_INDEX + CI_NODE_TOTAL             GitLab CI `parallel:`, 1-based
 *   CIRCLE_NODE_INDEX + CIRCLE_NODE_TOTAL     CircleCI `parallelism:`, 0-based
 *   BUILDKITE_PARALLEL_JOB + BUILDKITE_PARALLEL_JOB_COUNT
 *                                             Buildkite `parallelism:`, 0-based
 */
import { ConfigError } from '../base/config-error.js';
import type { Shard } from '../stress/campaign-spec.js';
import { type Strategy, shardRefusal } from '../stress/controlled/strategies.js';
import type { MutantProfile } from '../stress/mutant-catalog.js';
import type { StressMode } from '../stress/stress-mode.js';

/**
 * Shards of one campaign: as many as a Kubernetes Indexed Job may have completions (10^5);
 * past that, a count is a typing error (and beyond 2^53 not even a number any more).
 */
export const MAX_SHARDS = 100_000;

type Env = Readonly<Record<string, string | undefined>>;

interface Convention {
  readonly index: string;
  readonly count: string;
  /** What the runner's first copy gets. */
  readonly base: 0 | 1;
  readonly runner: string;
}

const CONVENTIONS: readonly Convention[] = [
  { index: 'JOB_COMPLETION_INDEX', count: 'DIRTYRING_SHARD_COUNT', base: 0, runner: 'a Kubernetes Indexed Job' },
  { index: 'CI_NODE_INDEX', count: 'CI_NODE_TOTAL', base: 1, runner: 'GitLab CI parallel' },
  { index: 'CIRCLE_NODE_INDEX', count: 'CIRCLE_NODE_TOTAL', base: 0, runner: 'CircleCI parallelism' },
  { index: 'BUILDKITE_PARALLEL_JOB', count: 'BUILDKITE_PARALLEL_JOB_COUNT', base: 0, runner: 'Buildkite parallelism' },
];

/** `--shard auto` resolved to `i/n` (1-based, as the option takes it), naming where it came from. */
export function shardFromEnv(env: Env): { shard: string; from: string } {
  const explicit = env['DIRTYRING_SHARD'];
  if (explicit !== undefined && explicit.trim() !== '') return { shard: explicit.trim(), from: 'DIRTYRING_SHARD' };
  for (const c of CONVENTIONS) {
    const index = env[c.index];
    if (index === undefined || index.trim() === '') continue;
    const count = env[c.count];
    if (count === undefined || count.trim() === '') {
      throw new ConfigError('--shard', 'auto', 'EINVAL', `${c.index} is set (${c.runner}) but ${c.count} is not: set it to the number of shards`);
    }
    const i = envInt(c.index, index);
    const n = envInt(c.count, count);
    return { shard: `${i - c.base + 1}/${n}`, from: `${c.index}=${index} (${c.base}-based), ${c.count}=${count}` };
  }
  throw new ConfigError(
    '--shard',
    'auto',
    'EINVAL',
    `no shard in the environment: set DIRTYRING_SHARD=i/n, or run as ${CONVENTIONS.map((c) => `${c.runner} (${c.index}, ${c.count})`).join(', ')}`,
  );
}

function envInt(name: string, v: string): number {
  if (!/^\d{1,9}$/.test(v.trim())) throw new ConfigError('--shard', 'auto', 'EINVAL', `${name}=${v} is not a non-negative integer`);
  return Number(v);
}

/**
 * A shard that would run no run is refused rather than reported OK: an OK must mean that runs
 * were made. Shard i of n holds runs i-1, i-1+n, ...: none when the campaign has fewer than i.
 */
export function checkShardHasRuns(shard: Shard, runs: number | null, mutants: readonly MutantProfile[], modes: readonly StressMode[]): void {
  const sizes = runs !== null ? [runs] : mutants.flatMap((m) => modes.filter((mode) => m.notModelledIn?.[mode] === undefined).map((mode) => m.bound[mode]));
  const smallest = sizes.length > 0 ? Math.min(...sizes) : null;
  if (smallest !== null && smallest < shard.index) {
    const what = runs !== null ? `--runs ${runs}` : `a mutant campaign of ${smallest} runs`;
    throw new ConfigError('--shard', `${shard.index}/${shard.count}`, 'EINVAL', `shard ${shard.index} of ${what} has no run (shard i holds runs i-1, i-1+n, ...); use fewer shards or more runs`);
  }
}

/** `--shard auto`: from the job runner's environment; the error names the variable when it is wrong. */
export function autoShard(): string {
  const { shard, from } = shardFromEnv(process.env);
  process.stderr.write(`--shard auto: ${shard} (from ${from})\n`);
  return shard;
}

export function parseShard(v: string, strategy: Strategy): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  if (!m) throw new ConfigError('--shard', v, 'EINVAL', 'expected i/n, e.g. 1/4');
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new ConfigError('--shard', v, 'EINVAL', `need 1 <= n <= ${MAX_SHARDS} shards`);
  if (index < 1 || index > count) throw new ConfigError('--shard', v, 'EINVAL', 'need 1 <= i <= n');
  const refusal = shardRefusal(strategy);
  if (refusal !== null) throw new ConfigError('--shard', v, 'EINVAL', refusal);
  return { index, count };
}
