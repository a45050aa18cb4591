/**
 * The stress view's campaign worker: a page campaign (src/stress/page-campaign.ts) with the
 * chosen harvester in the collector's place. Like workers/scheduler.worker.ts it hosts the
 * controlled scheduler (its waits block); its participants are campaign-participant workers,
 * told first which module the user picked; a free run's vCPUs are workers/vcpu.worker.ts.
 */
import { hostBrowserWorker } from '../../platform/browser-worker.js';
import { spawnBrowserVcpuWorker } from '../../platform/browser-vcpu-host.js';
import { exposeToParent } from '../../platform/expose-worker.js';
import type { ControlledWorkerApi, SpawnControlledWorker } from '../../stress/controlled/participant-api.js';
import { provideHarvesters } from '../../stress/harvester-source.js';
import { type PageCampaignRequest, type PageCampaignResult, runPageCampaign } from '../../stress/page-campaign.js';
import type { WasmFile } from '../wasm-choices.js';
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

export interface CampaignWorkerApi {
  /** `harvester`: the choice id (user-harvesters.ts); `wasm`: the picked module, for the id wasm-file. */
  campaign(req: PageCampaignRequest, histogram: SharedArrayBuffer, harvester: string, wasm: WasmFile | null): Promise<PageCampaignResult>;
}

const api: CampaignWorkerApi = {
  async campaign(req, histogram, harvester, wasm) {
    provideHarvesters(appProvider(wasm));
    const userHarvester = campaignHarvesterRef(harvester, wasm);
    return runPageCampaign({ ...req, userHarvester }, histogram, { spawnControlled: participantSpawner(wasm), spawnVcpu: spawnBrowserVcpuWorker });
  },
};

await exposeToParent(api, 'campaign.worker');
