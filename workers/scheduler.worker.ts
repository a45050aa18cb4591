/**
 * The browser app's scheduler worker: it hosts the controlled scheduler, whose waits block
 * (Atomics.wait), which a page's main thread may not do. It replays a schedule file with a
 * snapshot per step (the trace debugger) and runs stress campaigns into a shared outcome
 * histogram; controlled participants are nested module workers built from
 * workers/controlled.worker.ts, a free run's vCPUs from workers/vcpu.worker.ts.
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { spawnBrowserControlledWorker } from '../src/platform/browser-controlled-host.js';
import { spawnBrowserVcpuWorker } from '../src/platform/browser-vcpu-host.js';
import { ParticipantPool } from '../src/stress/controlled/pool.js';
import { replaySchedule } from '../src/stress/controlled/trace-replay.js';
import { type PageCampaignRequest, runPageCampaign } from '../src/stress/page-campaign.js';

const pool = new ParticipantPool(spawnBrowserControlledWorker);

await exposeToParent(
  {
    replay: (text: string, source: string) => replaySchedule(text, source, pool),
    campaign: (req: PageCampaignRequest, histogram: SharedArrayBuffer) => runPageCampaign(req, histogram, { spawnControlled: spawnBrowserControlledWorker, spawnVcpu: spawnBrowserVcpuWorker }),
  },
  'scheduler.worker',
);
