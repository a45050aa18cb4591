/** Campaign specs: run seeds, shards, the runs expected, and the checks a library caller gets. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/base/config-error.js';
import { campaignSpec, checkCampaignSpec, expectedRuns, inShard, mutantLogMode, runSeed } from '../../../src/stress/campaign-spec.js';
import { mutantProfile } from '../../../src/stress/mutant-catalog.js';

describe('campaign specs', () => {
  it('run k uses seed + k, wrapping at 2^32', () => {
    expect(runSeed(campaignSpec('free', { seed: 7 }), 3)).toBe(10);
    expect(runSeed(campaignSpec('free', { seed: 0xffffffff }), 2)).toBe(1);
  });

  it('shard i/n keeps the runs whose index is i - 1 mod n, and counts them', () => {
    const spec = campaignSpec('controlled', { runs: 10, shard: { index: 2, count: 3 } });
    const kept = Array.from({ length: 10 }, (_, i) => i).filter((i) => inShard(spec, i));
    expect(kept).toEqual([1, 4, 7]);
    expect(expectedRuns(spec)).toBe(kept.length);
    expect(expectedRuns(campaignSpec('free', { runs: null }))).toBeNull();
    expect(expectedRuns(campaignSpec('free', { runs: 12 }))).toBe(12);
  });

  it('a mutant names the log its scenarios need, per mode', () => {
    expect(mutantLogMode(mutantProfile('legacy-get-no-protect')!, 'controlled')).toBe('bitmap');
    expect(mutantLogMode(mutantProfile('dirty-before-writable')!, 'controlled')).toBe('ring');
  });

  it('refuses what the CLI refuses: a sharded dfs, a --log the mutant is not exposed with', () => {
    expect(() => checkCampaignSpec(campaignSpec('controlled', { strategy: 'dfs', shard: { index: 1, count: 2 } }))).toThrow(ConfigError);
    // Free runs have no strategy to refuse a shard.
    expect(() => checkCampaignSpec(campaignSpec('free', { strategy: 'dfs', shard: { index: 1, count: 2 } }))).not.toThrow();
    expect(() => checkCampaignSpec(campaignSpec('controlled', { mutant: mutantProfile('legacy-get-no-protect')!, log: 'ring' }))).toThrow(
      /only exposed with --log bitmap/,
    );
    expect(() => checkCampaignSpec(campaignSpec('controlled', { mutant: mutantProfile('legacy-get-no-protect')!, log: 'bitmap' }))).not.toThrow();
  });
});
