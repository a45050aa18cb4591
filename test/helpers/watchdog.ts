/**
 * Every concurrent test runs under a watchdog: a bound on its duration that fails with the
 * seed in the message, and any failure inside it is re-thrown with the seed attached.
 */
export async function withWatchdog<T>(seed: number, ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watchdog: ${what} did not finish in ${ms} ms (seed ${seed})`)), ms);
  });
  try {
    return await Promise.race([fn(), watchdog]);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.includes(`seed ${seed}`) ? msg : `${msg} (seed ${seed})`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** Seeds for randomized tests: fixed by default, overridable to explore (DIRTYRING_SEED). */
export function testSeed(fallback: number): number {
  const env = process.env['DIRTYRING_SEED'];
  return env !== undefined ? Number(env) >>> 0 : fallback;
}

/**
 * A Vitest timeout for a test whose watchdogs (run one after another) sum to `watchdogsMs`:
 * above the sum, so that a watchdog — whose message carries the seed — fires first.
 */
export function timeoutAbove(...watchdogsMs: number[]): number {
  return watchdogsMs.reduce((a, b) => a + b, 0) + 10_000;
}
