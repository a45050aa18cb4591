/**
 * The stress view's campaign worker: a page campaign (src/stress/page-campaign.ts) with the
 * chosen harvester in the collector's place. Like workers/scheduler.worker.ts it hosts the
 * controlled scheduler (its waits block); its participants are campaign-participant workers,
 * told first which module the user picked; a free run's vCPUs are workers/vcpu.worker.ts, and
 * a threaded harvester's threads harvester-thread.worker.ts (controlled runs: participants H0, H1…).
 */
import type { SpawnHarvesterThread } from '../../harvester/thread-layout.js';
import { hostBrowserWorker } from '../../platform/browser-worker.js';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import { exposeToParent } from '../../platform/expose-worker.js';
import type { ControlledWorkerApi, SpawnControlledWorker } from '../../stress/controlled/participant-api.js';
import { provideHarvesters } from '../../stress/harvester-source.js';
import { type PageCampaignRequest, type PageCampaignResult, runPageCampaign } from '../../stress/page-campaign.js';
import type { WasmFile } from '../wasm-choices.js';
import { appHarvesterThreadSpawner } from '../harvester-thread-host.js';
import { appProvider, campaignHarvesterRef } from '../user-harvesters.js';
import type { CampaignParticipantExtra } from './campaign-participant.worker.js';

function participantSpawner(wasm: WasmFile | null): SpawnControlledWorker {
  return (index) => {
    // `new URL(...)` inline in the constructor: Vite bundles only such workers.
    const worker = new Worker(new URL('./campaign-participant.worker.ts', import.meta.url), { type: 'module', name: `controlled${index}` });
    const handle = hostBrowserWorker<ControlledWorkerApi & CampaignParticipantExtra>(worker, `controlled worker ${index}`);
    // Sent before any run; a failure shows as the run's own (its harvester cannot be found).
    handle.api.provide(wasm).catch(() => undefined);
    return handle;
  };
}

/** A page campaign's result, and the harvester-thread workers its free runs started (controlled runs: none, the threads are participants). */
export interface AppCampaignResult extends PageCampaignResult {
  readonly harvesterThreadWorkers: number;
}

export interface CampaignWorkerApi {
  /** `harvester`: the choice id (user-harvesters.ts); `wasm`: the picked module, for the id wasm-file. */
  campaign(req: PageCampaignRequest, histogram: SharedArrayBuffer, harvester: string, wasm: WasmFile | null): Promise<AppCampaignResult>;
}

const api: CampaignWorkerApi = {
  async campaign(req, histogram, harvester, wasm) {
    provideHarvesters(appProvider(wasm));
    const userHarvester = campaignHarvesterRef(harvester, wasm);
    const spawnThread = appHarvesterThreadSpawner(wasm);
    let harvesterThreadWorkers = 0;
    const spawnHarvester: SpawnHarvesterThread = (thread) => {
      harvesterThreadWorkers++;
      return spawnThread(thread);
    };
    const result = await runPageCampaign({ ...req, userHarvester }, histogram, { spawnControlled: participantSpawner(wasm), spawnVcpu: spawnBrowserVcpuWorker, spawnHarvester });
    return { ...result, harvesterThreadWorkers };
  },
};

await exposeToParent(api, 'campaign.worker');
