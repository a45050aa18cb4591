/**
 * A controlled participant of a stress campaign in the page that may run a user's harvester:
 * the participant workers/controlled.worker.ts is, plus `provide`, which the campaign sends
 * first (comlink keeps the order of calls, and `provide` is synchronous) so that this thread
 * resolves the campaign's harvester URL (user-harvesters.ts).
 */
import { exposeToParent } from '../../platform/expose-worker.js';
import { createControlledWorkerApi } from '../../stress/controlled/participant-main.js';
import { provideHarvesters } from '../../stress/harvester-source.js';
import type { WasmFile } from '../wasm-choices.js';
import { appProvider } from '../user-harvesters.js';

export interface CampaignParticipantExtra {
  /** The module the user picked, if any (compiled here when a run first needs it). */
  provide(wasm: WasmFile | null): void;
}

const extra: CampaignParticipantExtra = {
  provide(wasm) {
    provideHarvesters(appProvider(wasm));
  },
};

await exposeToParent({ ...createControlledWorkerApi(), ...extra }, 'campaign-participant.worker');
