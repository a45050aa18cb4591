/** Validation of a run's page-tracking options (`--track-pages N|P%`, `--track-ring-entries`). */
import { describe, expect, it } from 'vitest';
import { validateRunConfig } from '../../../src/harness/run-config.js';

const MiB = 1024 * 1024;

describe('page-tracking run options', () => {
  it('default to no tracking, with 4096-entry notification rings', () => {
    expect(validateRunConfig({ seed: 1 })).toMatchObject({ trackPages: 0, trackPercent: 0, trackRingEntries: 4096 });
  });

  it('resolve a percentage of guest pages into a page count (at least 1)', () => {
    expect(validateRunConfig({ seed: 1, memoryBytes: 64 * MiB, trackPercent: 1 }).trackPages).toBe(164);
    expect(validateRunConfig({ seed: 1, memoryBytes: 4 * MiB, trackPercent: 0.01 }).trackPages).toBe(1);
    expect(validateRunConfig({ seed: 1, memoryBytes: 4 * MiB, trackPercent: 100 }).trackPages).toBe(1024);
  });

  it.each([
    [{ trackPages: 1025 }, '--track-pages', 'EINVAL'],
    [{ trackPages: -1 }, '--track-pages', 'EINVAL'],
    [{ trackPages: 1.5 }, '--track-pages', 'EINVAL'],
    [{ trackPages: 4, trackPercent: 1 }, '--track-pages', 'EINVAL'],
    [{ trackPercent: 101 }, '--track-pages', 'EINVAL'],
    [{ trackPages: 4, deviceWriters: 1 }, '--track-pages', 'EINVAL'],
    [{ trackPages: 4, trackRingEntries: 300 }, '--track-ring-entries', 'EINVAL'],
    [{ trackPages: 4, trackRingEntries: 131072 }, '--track-ring-entries', 'EINVAL'],
    [{ trackRingEntries: 1024 }, '--track-ring-entries', 'EINVAL'],
  ])('%j is refused, naming %s and %s', (input, param, errno) => {
    expect(() => validateRunConfig({ seed: 1, memoryBytes: 4 * MiB, ...input })).toThrowError(
      expect.objectContaining({ name: 'ConfigError', param, errno }),
    );
  });
});
