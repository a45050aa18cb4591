import { describe, expect, it } from 'vitest';
import { SharedMutex } from '../../../src/kernel/sync.js';

describe('SharedMutex hold-time sampling', () => {
  function mutex() {
    const f64 = new Float64Array(3);
    const lock = new SharedMutex(new Int32Array(new SharedArrayBuffer(4)), 0, 'test', {
      f64,
      acquires: 0,
      holdTotalNs: 1,
      holdMaxNs: 2,
    });
    return { lock, f64 };
  }

  it('times one acquisition in sampleEvery, counting it sampleEvery times in the total', () => {
    const { lock, f64 } = mutex();
    const shares: number[] = [];
    const measured: number[] = [];
    for (let i = 0; i < 8; i++) {
      lock.lock(1000, 4);
      const t = performance.now();
      while (performance.now() - t < 0.05) {
        /* hold the lock measurably */
      }
      lock.unlock();
      shares.push(lock.lastHoldNs);
      measured.push(lock.lastHoldMeasuredNs);
    }
    expect(f64[0]).toBe(8);
    expect(shares.map((s) => s > 0)).toEqual([true, false, false, false, true, false, false, false]);
    expect(shares[0]).toBeCloseTo(measured[0]! * 4, 6);
    // The lock's total is the sum of the shares: per-kind accounting built on them adds up.
    expect(f64[1]).toBeCloseTo(shares.reduce((a, b) => a + b, 0), 6);
    expect(f64[2]).toBe(Math.max(...measured));
  });

  it('times every acquisition by default', () => {
    const { lock } = mutex();
    for (let i = 0; i < 3; i++) {
      lock.lock();
      lock.unlock();
      expect(lock.lastHoldNs).toBe(lock.lastHoldMeasuredNs);
    }
  });

  it('never reads the clock for a lock without statistics (nothing would be charged)', () => {
    const lock = new SharedMutex(new Int32Array(new SharedArrayBuffer(4)), 0, 'no stats');
    const real = performance.now.bind(performance);
    let reads = 0;
    performance.now = () => {
      reads++;
      return real();
    };
    try {
      for (let i = 0; i < 3; i++) {
        lock.lock();
        lock.unlock();
        expect(lock.lastHoldNs).toBe(0);
        expect(lock.lastHoldMeasuredNs).toBe(0);
      }
    } finally {
      performance.now = real;
    }
    expect(reads).toBe(0);
  });
});
