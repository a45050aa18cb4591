/**
 * The bare side of the free-runs suite: a thread that does what a vCPU thread of a free run
 * does at the level of the run's control — parked until told to run, running until told to
 * pause (or, for a fixed amount of work, until it made its writes, then halted), parked again,
 * until told to exit — and nothing else: its "guest" is a loop of plain stores to one page.
 * Driven through the words of free-bare-layout.ts by bench/suites/free-runs.ts. Every wait is
 * bounded: a thread that hears nothing for 60 s ends its loop with an error.
 */
import { exposeToParent } from '../../src/platform/expose-worker.js';
import { BARE_WORDS_PER_VCPU, BareControl, BareState, BareWords } from './free-bare-layout.js';

const LIVENESS_MS = 60_000;
const STORES_PER_CHECK = 256;
const PAGE_WORDS = 1024;

export interface FreeBareWorkerApi {
  /** Start the thread's loop for vCPU `index` of the run whose control block is `control`. */
  start(control: SharedArrayBuffer, index: number): Promise<void>;
  /** Resolves when the loop has ended: the stores it made. */
  join(): Promise<number>;
}

let ended: Promise<number> = Promise.resolve(0);

function ring(w: Int32Array): void {
  Atomics.add(w, BareWords.DOORBELL, 1);
  Atomics.notify(w, BareWords.DOORBELL);
}

/**
 * Block until WAKE moves past `wake` (read before the control word that made us wait): a RUN
 * and PAUSE pair that came and went while this thread was not scheduled still wakes it.
 */
function waitForWake(w: Int32Array, wake: number): void {
  const deadline = performance.now() + LIVENESS_MS;
  while (Atomics.load(w, BareWords.WAKE) === wake) {
    if (performance.now() > deadline) throw new Error(`bare vCPU: no control change for ${LIVENESS_MS} ms`);
    Atomics.wait(w, BareWords.WAKE, wake, 1000);
  }
}

function loop(w: Int32Array, index: number): number {
  const page = new Int32Array(PAGE_WORDS);
  const state = BareWords.FIRST_VCPU + index * BARE_WORDS_PER_VCPU;
  let stores = 0;
  for (;;) {
    const wake = Atomics.load(w, BareWords.WAKE);
    const c = Atomics.load(w, BareWords.CONTROL);
    if (c === BareControl.EXIT) return stores;
    if (c === BareControl.PAUSE) {
      Atomics.store(w, state + 1, Atomics.load(w, BareWords.ITERATION));
      Atomics.store(w, state, BareState.PARKED);
      ring(w);
      waitForWake(w, wake);
      continue;
    }
    Atomics.store(w, state, BareState.RUNNING);
    ring(w);
    const fixed = Atomics.load(w, BareWords.WRITES);
    const iteration = Atomics.load(w, BareWords.ITERATION);
    if (fixed > 0) {
      for (let n = 0; n < fixed; n++) page[n & (PAGE_WORDS - 1)] = iteration;
      stores += fixed;
      Atomics.store(w, state + 2, stores | 0);
      Atomics.store(w, state, BareState.HALTED);
      ring(w);
      waitForWake(w, wake);
      continue;
    }
    while (Atomics.load(w, BareWords.CONTROL) === BareControl.RUN) {
      for (let k = 0; k < STORES_PER_CHECK; k++) page[k] = iteration;
      stores += STORES_PER_CHECK;
      Atomics.store(w, state + 2, stores | 0);
    }
  }
}

const api: FreeBareWorkerApi = {
  async start(control: SharedArrayBuffer, index: number): Promise<void> {
    const w = new Int32Array(control);
    // The loop blocks this thread; it starts once this call has answered, and join's answer
    // goes out when it has ended.
    ended = new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(loop(w, index));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  },
  join(): Promise<number> {
    return ended;
  },
};

await exposeToParent(api, 'bench free-bare worker');
