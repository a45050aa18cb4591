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

describe('edges scenarios', () => {
  it('spread pages over slots of odd and whole-word sizes (and SMRAM), with stores on word and slot edges', () => {
    let odd = 0;
    let smm = 0;
    let laps = 0;
    let wraps = 0;
    for (let seed = 0; seed < 300; seed++) {
      const s = generateScenario(new Prng(seed), { shape: 'edges' });
      const slots = [...s.slotPages!, s.smmPages ?? 0];
      expect(slots.reduce((a, b) => a + b, 0), `seed ${seed}`).toBe(s.pages);
      odd += s.slotPages!.filter((n) => n % 64 !== 0).length;
      smm += s.smmPages !== undefined ? 1 : 0;
      if (s.ringStart !== undefined) {
        expect(s.log).toBe('ring');
        // A few entries before the end of a lap: a handful of pushes crosses it.
        expect(s.ringEntries - (s.ringStart % s.ringEntries)).toBeLessThanOrEqual(3);
        if (s.ringStart > 2 ** 31) wraps++;
        else laps++;
      }
      expect(validateScenario(JSON.parse(JSON.stringify(s)), 'test')).toEqual(s);
    }
    expect(odd).toBeGreaterThan(200);
    expect(smm).toBeGreaterThan(40);
    expect(laps).toBeGreaterThan(40);
    expect(wraps).toBeGreaterThan(10);
    const s = generateScenario(new Prng(7), { shape: 'edges', slots: 3, smm: true, lap: true, log: 'ring' });
    expect([s.slotPages!.length, s.smmPages! > 0, s.ringStart !== undefined]).toEqual([3, true, true]);
    const onEdge = (p: number): boolean => {
      let start = 0;
      for (const n of [...s.slotPages!, s.smmPages!]) {
        if (p < start + n) return [0, 31, 32, 63].includes((p - start) % 64) || p - start >= n - 2;
        start += n;
      }
      return false;
    };
    const stores = s.stores.flat(2);
    expect(stores.filter(onEdge).length).toBeGreaterThan(stores.length / 2);
  });

  it("a file's placement fields are checked", () => {
    const good = generateScenario(new Prng(3), { shape: 'edges', log: 'ring', smm: true });
    const bad = (patch: Record<string, unknown>): string => {
      try {
        validateScenario({ ...good, ...patch }, 'f.json');
        return 'accepted';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(bad({})).toBe('accepted');
    expect(bad({ slotPages: [1, 2] })).toMatch(/scenario.slotPages .*EINVAL, with smmPages must add up to pages/);
    expect(bad({ slotPages: [0, good.pages - good.smmPages!] })).toMatch(/slotPages\[0\] 0: EINVAL/);
    expect(bad({ smmPages: good.pages })).toMatch(/scenario.smmPages/);
    expect(bad({ ringStart: 2 ** 32 })).toMatch(/scenario.ringStart .*EINVAL/);
    expect(bad({ log: 'bitmap', ringStart: 5 })).toMatch(/only a ring has indices/);
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
