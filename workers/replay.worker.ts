/**
 * The browser app's scheduler worker: it hosts the controlled scheduler, whose waits block
 * (Atomics.wait), which a page's main thread may not do. It replays a schedule file with a
 * snapshot per step (the trace debugger), its participants being nested module workers built
 * from workers/controlled.worker.ts.
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { spawnBrowserControlledWorker } from '../src/platform/browser-controlled-host.js';
import { ParticipantPool } from '../src/stress/controlled/pool.js';
import { replaySchedule } from '../src/stress/controlled/trace-replay.js';

const pool = new ParticipantPool(spawnBrowserControlledWorker);

await exposeToParent(
  {
    replay: (text: string, source: string) => replaySchedule(text, source, pool),
  },
  'replay.worker',
);
