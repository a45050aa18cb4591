/** `--shard auto`: each job runner's convention, 0- or 1-based, to the 1-based i/n of --shard. */
import { describe, expect, it } from 'vitest';
import { shardFromEnv } from '../../../src/cli/shard-env.js';

function refusal(env: Record<string, string>): string {
  try {
    shardFromEnv(env);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

describe('shardFromEnv', () => {
  it('reads each convention with its base', () => {
    expect(shardFromEnv({ DIRTYRING_SHARD: '2/5' }).shard).toBe('2/5');
    // Kubernetes Indexed Job: JOB_COMPLETION_INDEX is 0-based.
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '0', DIRTYRING_SHARD_COUNT: '4' }).shard).toBe('1/4');
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '3', DIRTYRING_SHARD_COUNT: '4' }).shard).toBe('4/4');
    // GitLab's CI_NODE_INDEX is 1-based.
    expect(shardFromEnv({ CI_NODE_INDEX: '1', CI_NODE_TOTAL: '3' }).shard).toBe('1/3');
    expect(shardFromEnv({ CI_NODE_INDEX: '3', CI_NODE_TOTAL: '3' }).shard).toBe('3/3');
    expect(shardFromEnv({ CIRCLE_NODE_INDEX: '0', CIRCLE_NODE_TOTAL: '2' }).shard).toBe('1/2');
    expect(shardFromEnv({ BUILDKITE_PARALLEL_JOB: '1', BUILDKITE_PARALLEL_JOB_COUNT: '2' }).shard).toBe('2/2');
  });

  it('the explicit variable wins over a runner convention', () => {
    expect(shardFromEnv({ DIRTYRING_SHARD: '1/2', CI_NODE_INDEX: '2', CI_NODE_TOTAL: '2' }).shard).toBe('1/2');
  });

  it('refuses an index without its count, a non-number, and no shard at all, naming the variable', () => {
    expect(refusal({ JOB_COMPLETION_INDEX: '1' })).toContain('--shard auto: EINVAL, JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but DIRTYRING_SHARD_COUNT is not');
    expect(refusal({ CI_NODE_INDEX: 'x', CI_NODE_TOTAL: '2' })).toBe('--shard auto: EINVAL, CI_NODE_INDEX=x is not a non-negative integer');
    expect(refusal({})).toContain('--shard auto: EINVAL, no shard in the environment');
  });
});
