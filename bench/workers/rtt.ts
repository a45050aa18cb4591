/**
 * The echo side of the round-trip baselines of the stall-latency suite: for each ping number the
 * main thread publishes, publish the same number as pong. `wait` blocks in Atomics.wait and
 * notifies; `spin` polls with Atomics.load. A ping of -1 ends the worker. Bounded: a worker that
 * sees no ping for 60 s exits.
 */
import { workerData } from 'node:worker_threads';

const { buffer, mode } = workerData as { buffer: SharedArrayBuffer; mode: 'wait' | 'spin' };
const w = new Int32Array(buffer);
const PING = 0;
const PONG = 1;
let last = 0;
for (;;) {
  let p = Atomics.load(w, PING);
  if (mode === 'wait') {
    const deadline = performance.now() + 60_000;
    while (p === last) {
      if (performance.now() > deadline) process.exit(3);
      Atomics.wait(w, PING, last, 1000);
      p = Atomics.load(w, PING);
    }
  } else {
    let polls = 0;
    const deadline = performance.now() + 60_000;
    while (p === last) {
      if ((++polls & 0xffff) === 0 && performance.now() > deadline) process.exit(3);
      p = Atomics.load(w, PING);
    }
  }
  if (p < 0) break;
  last = p;
  Atomics.store(w, PONG, p);
  if (mode === 'wait') Atomics.notify(w, PONG);
}
