/**
 * Bounded waiting on shared words, and a futex-style mutex in shared memory.
 *
 * Atomics.wait is forbidden on a browser window's main thread, so every wait here falls back
 * to spinning there (the waits that reach this module are short: a TLB flush acknowledgement,
 * a lock held for a reset). Every wait has a deadline: a wedged peer becomes an error, never a
 * hang.
 */
import { NS_PER_MS, now } from '../base/clock.js';
import { Step, stepHook } from './step-hook.js';
import { mem } from './wmm/mem.js';

function detectBlocking(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether this thread may block in Atomics.wait. */
export const canBlock: boolean = detectBlocking();

/** Default bound for kernel-internal waits (locks, flush acknowledgements). */
export const KERNEL_WAIT_TIMEOUT_MS = 10_000;

/**
 * Reads of the word before a wait blocks: most kernel waits here end within microseconds, and
 * this many loads (about a microsecond) spare the cost of a futex wait and wake-up.
 */
const SPINS_BEFORE_BLOCKING = 200;
/** A lock waiter re-checks at least this often (ms), so that a missed wake-up costs little. */
const LOCK_WAIT_SLICE_MS = 50;

export class WaitTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no progress after ${ms} ms (wedged peer?)`);
    this.name = 'WaitTimeoutError';
  }
}

/**
 * Wait while `i32[index] === value`, at most `timeoutMs`. Returns true when the value changed,
 * false on timeout. Spins briefly first: most kernel waits here end within microseconds.
 */
export function waitWhileEqual(i32: Int32Array, index: number, value: number, timeoutMs: number): boolean {
  for (let spin = 0; spin < SPINS_BEFORE_BLOCKING; spin++) {
    if (Atomics.load(i32, index) !== value) return true;
  }
  if (canBlock) {
    return Atomics.wait(i32, index, value, timeoutMs) !== 'timed-out' || Atomics.load(i32, index) !== value;
  }
  const deadline = now() + timeoutMs;
  while (Atomics.load(i32, index) === value) {
    if (now() >= deadline) return false;
  }
  return true;
}

/** Short sleep usable from any thread (busy-waits where blocking is forbidden). */
export function sleepMs(ms: number): void {
  if (canBlock) {
    Atomics.wait(sleepWord, 0, 0, ms);
    return;
  }
  const deadline = now() + ms;
  while (now() < deadline) {
    /* spin: the browser main thread cannot block */
  }
}
const sleepWord = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

export interface LockStats {
  readonly f64: Float64Array;
  readonly acquires: number;
  readonly holdTotalNs: number;
  readonly holdMaxNs: number;
}

/** The states of a SharedMutex word. */
const UNLOCKED = 0;
const LOCKED = 1;
/** Held, and someone may be waiting: unlock must wake a waiter. */
const CONTENDED = 2;

/**
 * A mutex on one Int32 word: 0 free, 1 held, 2 held with (possible) waiters — the classic
 * three-state futex mutex, so an uncontended lock/unlock is one compare-and-swap each.
 * Hold times are accumulated by the holder (it is alone while holding, so plain stores to the
 * statistics are race-free).
 */
export class SharedMutex {
  private heldSince = 0;
  /** Whether the current critical section is being timed (see `lock`). */
  private timing = true;
  /** `sampleEvery` of the current critical section: what its measured time stands for. */
  private scale = 1;
  /** This thread's acquisitions, to pick the sampled ones. */
  private acquisitions = 0;
  /**
   * This thread's last critical section's share of the hold total (ns): the measured time ×
   * `sampleEvery` when it was sampled, 0 when not. Summing it estimates the total hold time.
   * Always 0 for a lock made without LockStats: such a lock is never timed.
   */
  lastHoldNs = 0;
  /** The last critical section's measured hold time (ns), 0 when it was not sampled: for maxima. */
  lastHoldMeasuredNs = 0;

  constructor(
    private readonly i32: Int32Array,
    private readonly index: number,
    readonly name: string,
    private readonly stats?: LockStats,
  ) {}

  /**
   * `sampleEvery` (a power of two) times only one acquisition in that many, skipping the two
   * clock reads of hold-time accounting (about 45 ns each here) on the others: for a lock
   * taken very often for very short holds. A sampled hold counts `sampleEvery` times in the
   * total, so totals stay estimates of the whole; maxima are of the sampled holds.
   */
  lock(timeoutMs = KERNEL_WAIT_TIMEOUT_MS, sampleEvery = 1): void {
    let c = Atomics.compareExchange(this.i32, this.index, UNLOCKED, LOCKED);
    if (c !== UNLOCKED) {
      if (stepHook.active) stepHook.at(Step.LOCK_WAIT, this.index, 0);
      const deadline = now() + timeoutMs;
      do {
        if (c === CONTENDED || Atomics.compareExchange(this.i32, this.index, LOCKED, CONTENDED) !== UNLOCKED) {
          const left = deadline - now();
          if (left <= 0) throw new WaitTimeoutError(`${this.name}`, timeoutMs);
          waitWhileEqual(this.i32, this.index, CONTENDED, Math.min(left, LOCK_WAIT_SLICE_MS));
        }
        c = Atomics.compareExchange(this.i32, this.index, UNLOCKED, CONTENDED);
      } while (c !== UNLOCKED);
    }
    // Under a weak memory model, what the previous holder did before unlocking is visible now.
    if (mem.active) mem.acquired(this.i32, this.index);
    // A lock without statistics (slots_lock) has no hold total to charge: skip both clock reads.
    if (this.stats !== undefined && (this.acquisitions++ & (sampleEvery - 1)) === 0) {
      this.timing = true;
      this.scale = sampleEvery;
      this.heldSince = now();
    } else {
      this.timing = false;
    }
  }

  unlock(): void {
    const stats = this.stats;
    if (this.timing) {
      const heldNs = (now() - this.heldSince) * NS_PER_MS;
      const share = heldNs * this.scale;
      this.lastHoldNs = share;
      this.lastHoldMeasuredNs = heldNs;
      if (stats) {
        stats.f64[stats.holdTotalNs]! += share;
        if (heldNs > stats.f64[stats.holdMaxNs]!) stats.f64[stats.holdMaxNs] = heldNs;
      }
    } else {
      this.lastHoldNs = 0;
      this.lastHoldMeasuredNs = 0;
    }
    if (stats) stats.f64[stats.acquires]! += 1;
    if (mem.active) mem.released(this.i32, this.index);
    // LOCKED − 1 is UNLOCKED: released. CONTENDED − 1 is not: free the word and wake one waiter.
    if (Atomics.sub(this.i32, this.index, 1) !== LOCKED) {
      Atomics.store(this.i32, this.index, UNLOCKED);
      Atomics.notify(this.i32, this.index, 1);
    }
  }

  /** Run `fn` with the lock held. */
  with<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  isLocked(): boolean {
    return Atomics.load(this.i32, this.index) !== 0;
  }
}

/** Bump a doorbell word and wake whoever waits on it (userspace waits on the VM's DOORBELL). */
export function ringDoorbell(i32: Int32Array, index: number): void {
  Atomics.add(i32, index, 1);
  Atomics.notify(i32, index);
}
