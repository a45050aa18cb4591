/** Controlled scenarios: generation under constraints, and validation of files. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/base/config-error.js';
import { Prng } from '../../../../src/base/prng.js';
import { MUTANT_NAMES } from '../../../../src/userspace/known-bugs.js';
import { generateScenario, totalStores, validateScenario } from '../../../../src/stress/controlled/scenario.js';
import { MUTANT_PROFILES, allMutantProfiles, mutantProfile } from '../../../../src/stress/mutant-catalog.js';

describe('generateScenario', () => {
  it('is a function of the seed', () => {
    expect(generateScenario(new Prng(5))).toEqual(generateScenario(new Prng(5)));
  });

  it('honours every constraint and only makes valid scenarios', () => {
    for (let seed = 0; seed < 300; seed++) {
      const s = generateScenario(new Prng(seed), seed % 2 ? { log: 'clear' } : {});
      expect(validateScenario(JSON.parse(JSON.stringify(s)), 'test')).toEqual(s);
      if (seed % 2) expect(s.log).toBe('clear');
    }
    const hostile = generateScenario(new Prng(1), { harvester: 'hostile-wrap', shape: 'micro', collections: 0, drain: true });
    expect(hostile).toMatchObject({ log: 'ring', harvester: 'hostile-wrap', collections: 0, drain: true });
    for (const list of hostile.stores.flat()) expect(new Set(list).size).toBeGreaterThanOrEqual(2);
    const flood = generateScenario(new Prng(1), { shape: 'flood' });
    expect(totalStores(flood)).toBeGreaterThan(flood.ringEntries);
    const sweep = generateScenario(new Prng(1), { shape: 'sweep' });
    expect(new Set(sweep.stores[0]![0]).size).toBeGreaterThanOrEqual(64);
  });

  it('every profile names a mutant switch, every switch has a profile, and the constraints generate', () => {
    for (const p of MUTANT_PROFILES) expect(MUTANT_NAMES[p.name], p.name).toBe(p.bit);
    expect(allMutantProfiles().map((p) => p.name).sort()).toEqual(Object.keys(MUTANT_NAMES).sort());
    for (const p of allMutantProfiles()) expect(() => generateScenario(new Prng(1), p.controlled)).not.toThrow();
    // The switches of this harness's catalog all have specific profiles.
    expect(MUTANT_PROFILES.length).toBeGreaterThanOrEqual(11);
    expect(mutantProfile('no-such-mutant')).toBeUndefined();
  });
});

describe('validateScenario', () => {
  const good = generateScenario(new Prng(2), { shape: 'micro', log: 'ring', vcpus: 2 });
  const bad = (patch: Record<string, unknown>): string => {
    try {
      validateScenario({ ...good, ...patch }, '--replay f.json');
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
  };

  it('names the field and the errno', () => {
    expect(bad({ vcpus: 9 })).toMatch(/^--replay f.json: scenario.vcpus 9: EINVAL/);
    expect(bad({ log: 'pml' })).toMatch(/scenario.log "pml": EINVAL/);
    expect(bad({ harvester: 'unaligned-clear' })).toMatch(/needs log clear/);
    expect(bad({ stores: [[[0]]] })).toMatch(/one list per vCPU/);
    expect(bad({ stores: [[[0]], [[good.pages]]] })).toMatch(/scenario.stores\[1\]\[0\]\[0\]/);
    expect(bad({ ringEntries: 1000 })).toMatch(/ring size must be a power of two/);
    expect(bad({})).toBe('accepted');
  });
});
