/** A stop request gives the work under way a bounded grace, then abandons it. */
import { describe, expect, it } from 'vitest';
import { finishWithin } from '../../../src/stress/stop.js';

const never = new Promise<number>(() => {});

describe('finishWithin', () => {
  it('without a stop, or when the work ends within the grace, is the work', async () => {
    expect(await finishWithin(Promise.resolve(4), undefined)).toBe(4);
    const stop = new AbortController();
    const work = new Promise<number>((resolve) => setTimeout(() => resolve(7), 20));
    stop.abort();
    expect(await finishWithin(work, stop.signal, 5_000)).toBe(7);
  });

  it('abandons work that does not end within the grace once the stop fires, and not before', async () => {
    const stop = new AbortController();
    const t0 = performance.now();
    setTimeout(() => stop.abort(), 50);
    expect(await finishWithin(never, stop.signal, 30)).toBe('abandoned');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(70);
  });

  it('a work that fails still fails', async () => {
    await expect(finishWithin(Promise.reject(new Error('boom')), new AbortController().signal)).rejects.toThrow('boom');
  });
});
