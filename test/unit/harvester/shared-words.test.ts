/**
 * kvm.shared: words a harvester's threads share — every flavour reads what any flavour stored
 * (on real threads they are all Atomics), each access is a step point naming the word, and a
 * word that does not exist is a RangeError naming it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HarvesterAccess } from '../../../src/harvester/ring-mapping.js';
import { HARVESTER_SHARED_WORDS, HarvesterSharedWords } from '../../../src/harvester/shared-words.js';
import { Step, clearStepHook, installStepHook } from '../../../src/kernel/step-hook.js';

afterEach(() => clearStepHook());

describe('kvm.shared', () => {
  it('two views of one buffer see each other\'s stores, in every flavour', () => {
    const buffer = new SharedArrayBuffer(HARVESTER_SHARED_WORDS * 4);
    const a = new HarvesterSharedWords(buffer);
    const b = new HarvesterSharedWords(buffer);
    expect(a.length).toBe(16);
    a.storeRelaxed(0, 1);
    a.storeRelease(1, 2);
    a.storePlain(15, -3);
    expect([b.loadAcquire(0), b.loadPlain(1), b.loadRelaxed(15), b.loadRelaxed(2)]).toEqual([1, 2, -3, 0]);
  });

  it('each access is a step point naming the word; a word out of range is a RangeError', () => {
    const seen: [number, number, number][] = [];
    installStepHook((step, x, y) => seen.push([step, x, y]));
    const w = new HarvesterSharedWords();
    w.storeRelease(3, 7);
    w.loadAcquire(3);
    expect(seen).toEqual([
      [Step.HARVESTER_ACCESS, 3, HarvesterAccess.SHARED_STORE],
      [Step.HARVESTER_ACCESS, 3, HarvesterAccess.SHARED_LOAD],
    ]);
    expect(() => w.loadAcquire(16)).toThrow('kvm.shared: no word 16 (there are 16)');
    expect(() => w.storePlain(-1, 0)).toThrow(RangeError);
  });
});
