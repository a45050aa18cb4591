/**
 * `--shard auto`: the shard from the environment a job runner gives each of its parallel
 * copies, so that one manifest or pipeline line starts every shard. Conventions, first match:
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
