/**
 * The weak memory model's mechanics beyond the litmus verdicts: the bounded history, loom's
 * progress rule, x86 store forwarding, RMWs reading the newest store, sync objects.
 */
import { describe, expect, it } from 'vitest';
import { WeakModel, allocateWmmState } from '../../../../src/kernel/wmm/model.js';
import { Access, Atomic, WmmProfile } from '../../../../src/kernel/wmm/ordering.js';

function model(threads: number, history = 8, profile: number = WmmProfile.ARM64, syncObjects = 0): WeakModel {
  const m = new WeakModel(allocateWmmState({ threads, history, profile, cumulative: true, locations: 2, syncObjects, eventCapacity: 64 }));
  m.init(0, 0, 0);
  m.init(1, 0, 0);
  return m;
}

/** The values thread t may read at loc, newest first (no store was skipped by the progress rule here). */
function readable(m: WeakModel, t: number, loc: number): number[] {
  const n = m.candidates(t, loc);
  return m.storesOf(loc).map((s) => s[0]).reverse().slice(0, n);
}

describe('store histories', () => {
  it('keep the newest K stores: with K = 2 the initial value is gone after two stores', () => {
    const m = model(2, 2);
    m.store(0, 0, 1, 0, Access.ONCE);
    m.store(0, 0, 2, 0, Access.ONCE);
    m.store(0, 0, 3, 0, Access.ONCE);
    expect(m.storesOf(0).map((s) => s[0])).toEqual([2, 3]);
    expect(readable(m, 1, 0)).toEqual([3, 2]);
  });

  it('a thread reads its own newest store (coherence write→read), and x86 forwards it from the store buffer', () => {
    for (const profile of [WmmProfile.ARM64, WmmProfile.X86]) {
      const m = model(2, 8, profile);
      m.store(0, 0, 1, 0, Access.ONCE);
      expect(m.candidates(0, 0)).toBe(1);
      expect(m.candidates(1, 0)).toBe(2);
    }
  });

  it('after reading a store, a thread never reads an older one (coherence read→read)', () => {
    const m = model(2);
    m.store(0, 0, 1, 0, Access.ONCE);
    m.store(0, 0, 2, 0, Access.ONCE);
    expect(m.candidates(1, 0)).toBe(3);
    expect(m.read(1, 0, Access.ONCE, 1)).toBe(1);
    expect(m.candidates(1, 0)).toBe(2); // 2 or 1, never 0 again
  });

  it('progress: what a thread read before its last yield is not offered again once something newer exists', () => {
    const m = model(2);
    m.store(0, 0, 1, 0, Access.ONCE);
    expect(m.candidates(1, 0)).toBe(2);
    expect(m.read(1, 0, Access.ONCE, 1)).toBe(0);
    expect(m.candidates(1, 0)).toBe(2); // not yet yielded: the same stale value may be read again
    m.yieldPoint(1);
    expect(m.candidates(1, 0)).toBe(1);
    expect(m.read(1, 0, Access.ONCE, 0)).toBe(1);
  });

  it('an atomic read-modify-write always reads the newest store and continues its release sequence', () => {
    const m = model(3);
    m.store(0, 1, 7, 0, Access.ONCE); // payload
    m.store(0, 0, 1, 0, Access.RELEASE); // flag, released
    expect(m.rmwRead(1, 0, Atomic.RELAXED)).toBe(1);
    m.rmwWrite(1, 0, 3, 0, Atomic.RELAXED);
    // Thread 2 acquires the RMW's store: it synchronizes with thread 0's release through it.
    expect(m.candidates(2, 0)).toBe(3);
    m.read(2, 0, Access.ACQUIRE, 0);
    expect(m.candidates(2, 1)).toBe(1);
  });

  it('sync objects carry happens-before: release by one thread, acquire by another', () => {
    const m = model(2, 8, WmmProfile.ARM64, 1);
    m.store(0, 0, 1, 0, Access.ONCE);
    expect(m.candidates(1, 0)).toBe(2);
    m.syncRelease(0, 0);
    m.syncAcquire(1, 0);
    expect(m.candidates(1, 0)).toBe(1);
    expect(m.knows(1, 0, m.ownTime(0))).toBe(true);
  });

  it('counts the loads that read an older store than the newest', () => {
    const m = model(2);
    m.store(0, 0, 1, 0, Access.ONCE);
    m.candidates(1, 0);
    m.read(1, 0, Access.ONCE, 1);
    expect(m.staleReads).toBe(1);
  });
});
