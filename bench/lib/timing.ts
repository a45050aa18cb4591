/**
 * Time and bounded waiting for the bench. Every wait has a deadline: a wedged worker turns into
 * an error naming what was awaited, never a hang.
 */

export const now: () => number = () => performance.now();

export class BenchTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`bench: ${what}: no progress after ${ms} ms`);
    this.name = 'BenchTimeoutError';
  }
}

/** Block (Atomics.wait in slices) while `i32[index] === value`, at most `timeoutMs`. */
export function waitWhileEqual(i32: Int32Array, index: number, value: number, timeoutMs: number, what: string): void {
  const deadline = now() + timeoutMs;
  while (Atomics.load(i32, index) === value) {
    const left = deadline - now();
    if (left <= 0) throw new BenchTimeoutError(what, timeoutMs);
    Atomics.wait(i32, index, value, Math.min(left, 100));
  }
}

/**
 * What a producer does when its ring is full, or a consumer when its rings are empty: poll a
 * few hundred times, then sleep ~50 µs on a private word so that 4 producers and a consumer on
 * 2 cores do not starve each other. Every mode of the ring benchmark uses this same policy.
 * `idle()` throws once `timeoutMs` have passed without a `progress()`.
 */
export class Backoff {
  private polls = 0;
  private since = 0;
  private readonly word = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly what: string,
    private readonly timeoutMs = 20_000,
    private readonly spinPolls = 256,
  ) {}

  progress(): void {
    this.polls = 0;
  }

  idle(): void {
    const p = ++this.polls;
    if (p === 1) this.since = now();
    if (p <= this.spinPolls) return;
    if ((p & 15) === 0 && now() - this.since > this.timeoutMs) throw new BenchTimeoutError(this.what, this.timeoutMs);
    Atomics.wait(this.word, 0, 0, 0.05);
  }
}
