/**
 * The live view's configuration: a link reproduces it exactly (every field, seed included), a
 * malformed link falls back field by field and says which, and the run configuration it makes
 * is validated like the CLI's (errors name the parameter and the errno).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LIVE_DEFAULTS, type LiveConfig, choicesOf, configFromQuery, configToQuery, toRunConfig } from '../../../src/app/live/live-config.js';

const choice = (field: keyof LiveConfig) => fc.constantFrom(...choicesOf(field)!);

const liveConfig: fc.Arbitrary<LiveConfig> = fc.record({
  log: choice('log'),
  vcpus: fc.integer({ min: 1, max: 64 }),
  memoryMiB: fc.integer({ min: 1, max: 1024 }),
  ringEntries: fc.integer({ min: 1, max: 65536 }),
  workload: choice('workload'),
  deviceWriters: fc.integer({ min: 0, max: 8 }),
  mutant: choice('mutant'),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  harvester: choice('harvester'),
  iterations: fc.integer({ min: 1, max: 1000 }),
  intervalMs: fc.integer({ min: 1, max: 60000 }),
  memoryModel: choice('memoryModel'),
}) as fc.Arbitrary<LiveConfig>;

describe('live configuration links', () => {
  it('a link reproduces every field of the configuration', () => {
    fc.assert(
      fc.property(liveConfig, (c) => {
        const { config, problems } = configFromQuery(new URLSearchParams(configToQuery(c)));
        expect(problems).toEqual([]);
        expect(config).toEqual(c);
      }),
    );
  });

  it('a malformed field falls back to its default and is named, the others are kept', () => {
    const { config, problems } = configFromQuery(new URLSearchParams('vcpus=two&log=tape&seed=42'));
    expect(config.vcpus).toBe(LIVE_DEFAULTS.vcpus);
    expect(config.log).toBe(LIVE_DEFAULTS.log);
    expect(config.seed).toBe(42);
    expect(problems).toHaveLength(2);
    // In the order of the fields: the log mode first.
    expect(problems[0]).toMatch(/^log=tape: expected one of ring, bitmap, clear/);
    expect(problems[1]).toMatch(/^vcpus=two: not a whole number/);
  });
});

describe('the run configuration of a live run', () => {
  it('is the CLI-validated configuration, with the seed and the mutant bits', () => {
    const r = toRunConfig({ ...LIVE_DEFAULTS, seed: 77, mutant: 'harvest-skips-entry' });
    expect(r.seed).toBe(77);
    expect(r.mutants).not.toBe(0);
    expect(r.memoryBytes).toBe(LIVE_DEFAULTS.memoryMiB * 2 ** 20);
    expect(r.ringEntries).toBe(LIVE_DEFAULTS.ringEntries);
  });

  it('refuses a bad value naming the parameter and the errno', () => {
    expect(() => toRunConfig({ ...LIVE_DEFAULTS, ringEntries: 1000 })).toThrow(/--ring-entries 1000: EINVAL/);
    expect(() => toRunConfig({ ...LIVE_DEFAULTS, vcpus: 0 })).toThrow(/--vcpus 0: EINVAL/);
  });

  it('drops the ring size outside ring mode (the CLI refuses one with bitmap logging)', () => {
    expect(() => toRunConfig({ ...LIVE_DEFAULTS, log: 'clear', ringEntries: 1000 })).not.toThrow();
  });
});
