/**
 * The scheduler's bounded wait, in one thread: it returns as soon as the condition holds, at
 * the bound when it never does, and names the participant whose worker died.
 */
import { describe, expect, it } from 'vitest';
import type { ControlledWorkerHandle } from '../../../../src/stress/controlled/participant-api.js';
import { ParkWaiter } from '../../../../src/stress/controlled/park-wait.js';
import { SchedulerToken } from '../../../../src/stress/controlled/token.js';

function handles(failures: (string | null)[]): ControlledWorkerHandle[] {
  return failures.map((failure) => ({ failure }) as ControlledWorkerHandle);
}

describe('ParkWaiter', () => {
  it('returns ok at once when the condition holds', async () => {
    const waiter = new ParkWaiter(new SchedulerToken(2), handles([null, null]));
    const t0 = performance.now();
    expect(await waiter.until(() => true, 10_000)).toBe('ok');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('times out at its bound when nothing settles', async () => {
    const waiter = new ParkWaiter(new SchedulerToken(2), handles([null, null]));
    const t0 = performance.now();
    expect(await waiter.until(() => false, 60)).toBe('timeout');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(60);
  });

  it('names the participant whose worker died, without waiting out the bound', async () => {
    const waiter = new ParkWaiter(new SchedulerToken(3), handles([null, null, 'exited with code 3']));
    const t0 = performance.now();
    expect(await waiter.until(() => false, 10_000)).toBe(2);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
