/**
 * Waiting without blocking the thread: what userspace does on a browser main thread (where
 * Atomics.wait is forbidden) and what a worker does while it must keep servicing messages.
 */

/** The keep-alive timer outlives the wait by this much, so that it never fires first. */
const KEEP_ALIVE_MARGIN_MS = 5;
/** Where Atomics.waitAsync is missing: how often to look at the word again. */
const POLL_MS = 1;

/**
 * Resolve when `i32[index] !== value` or after `timeoutMs`; true when the value changed.
 * Node does not keep the event loop alive for a pending Atomics.waitAsync, so a timer of the
 * same length holds it open.
 */
export async function waitAsyncWhileEqual(
  i32: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
): Promise<boolean> {
  if (Atomics.load(i32, index) !== value) return true;
  const waitAsync = (Atomics as unknown as { waitAsync?: AtomicsWaitAsync }).waitAsync;
  if (typeof waitAsync === 'function') {
    const r = waitAsync(i32, index, value, timeoutMs);
    if (!r.async) return r.value !== 'timed-out';
    const keepAlive = setTimeout(() => {}, timeoutMs + KEEP_ALIVE_MARGIN_MS);
    try {
      return (await r.value) !== 'timed-out' || Atomics.load(i32, index) !== value;
    } finally {
      clearTimeout(keepAlive);
    }
  }
  const deadline = performance.now() + timeoutMs;
  while (Atomics.load(i32, index) === value) {
    if (performance.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

type AtomicsWaitAsync = (
  i32: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Let the event loop run queued messages (a macrotask turn). */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * Bound a promise: comlink calls never settle if the worker died, so every control-plane call
 * goes through this.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
