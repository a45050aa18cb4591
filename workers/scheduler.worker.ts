/**
 * The browser app's scheduler worker: it hosts the controlled scheduler, whose waits block
 * (Atomics.wait), which a page's main thread may not do. It replays a schedule file with a
 * snapshot per step (the trace debugger); controlled participants are nested module workers
 * built from workers/controlled.worker.ts. (Stress campaigns run in the stress view's own
 * worker, src/app/stress/campaign.worker.ts, which can give them a user's harvester.)
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { spawnBrowserControlledWorker } from '../src/platform/browser-controlled-host.js';
import { ParticipantPool } from '../src/stress/controlled/pool.js';
import { replaySchedule } from '../src/stress/controlled/trace-replay.js';

const pool = new ParticipantPool(spawnBrowserControlledWorker);

await exposeToParent({ replay: (text: string, source: string) => replaySchedule(text, source, pool) }, 'scheduler.worker');
