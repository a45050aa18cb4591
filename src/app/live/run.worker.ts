/**
 * The live run's worker: userspace's thread for the browser app's live view. It builds the run
 * (live-run.ts), hands the page the VM's and the telemetry's shared buffers, and takes the
 * control calls (pause, resume, step, stop, speed); the vCPUs it starts are nested module
 * workers from workers/vcpu.worker.ts, the source Node runs (a threaded harvester's threads:
 * harvester-thread.worker.ts). Events go back once per state
 * change or iteration, through the callbacks the page passed.
 */
import { expose } from 'comlink';
import type { RunConfig } from '../../harness/run-config.js';
import type { VmBuffers } from '../../kernel/vm.js';
import type { HarvesterThreadSource } from '../../harvester/create-user-collector.js';
import { appHarvesterThreadSpawner } from '../harvester-thread-host.js';
import { type HarvesterChoice, findHarvester, uploadedChoice } from '../harvesters.js';
import { appHarvesterUrlOf } from '../user-harvesters.js';
import { UPLOADED_WASM_ID, type WasmFile } from '../wasm-choices.js';
import { type LiveConfig, toRunConfig } from './live-config.js';
import { type LiveEvents, LiveRun } from './live-run.js';
import type { TelemetryBuffers } from './live-telemetry.js';

export interface LiveRunSetup {
  readonly config: RunConfig;
  readonly vm: VmBuffers;
  /** The data memslots, in the oracle's order (address space, id). */
  readonly slots: readonly { readonly asId: number; readonly id: number }[];
  readonly telemetry: TelemetryBuffers;
  /** False: the page derives each ring's harvested position from its flags (RingStrips). */
  readonly hasFetchIndex: boolean;
  /** The harvester's threads of its own (harvester-thread workers); 0: it runs in the run's worker. */
  readonly harvesterThreads: number;
}

let live: LiveRun | null = null;

/** The harvester a run names; the picked file's module is checked here, in the thread that runs it. */
function harvesterFor(id: string, wasm: WasmFile | null): HarvesterChoice {
  if (id === UPLOADED_WASM_ID) {
    if (wasm === null) throw new Error('harvester: no .wasm file chosen (pick one built with dirtyring build-harvester)');
    return uploadedChoice(wasm);
  }
  const choice = findHarvester(id);
  if (!choice) throw new Error(`harvester: no harvester "${id}"`);
  return choice;
}

/** Where a harvester with threads of its own finds them: its app URL, the page's harvester-thread workers. */
function harvesterThreads(choice: HarvesterChoice, wasm: WasmFile | null): HarvesterThreadSource | null {
  const d = choice.definition?.();
  if (d === undefined || d.threads === undefined) return null;
  return { url: appHarvesterUrlOf(choice.id, d, wasm), spawn: appHarvesterThreadSpawner(wasm) };
}

function current(): LiveRun {
  if (!live) throw new Error('no live run: create one first');
  return live;
}

export const liveRunWorkerApi = {
  /** Build the run (threads not started yet); throws ConfigError naming a bad parameter. */
  create(input: LiveConfig, events: LiveEvents, wasm: WasmFile | null = null): LiveRunSetup {
    if (live && live.state !== 'finished' && live.state !== 'failed' && live.state !== 'stopped') throw new Error('a live run is already going on in this worker');
    const config = toRunConfig(input);
    const choice = harvesterFor(input.harvester, wasm);
    live = new LiveRun(config, choice, events, harvesterThreads(choice, wasm));
    return {
      config: live.config,
      vm: live.run.vm.buffers(),
      slots: live.run.slots.map((s) => ({ asId: s.asId, id: s.id })),
      telemetry: live.telemetry.buffers,
      hasFetchIndex: live.hasFetchIndex,
      harvesterThreads: live.harvesterThreads,
    };
  },
  /** Start the run; its end comes as the onSummary event. */
  start(speed: number): void {
    const run = current();
    run.speed = speed;
    void run.runToEnd();
  },
  pause: () => current().pause(),
  resume: () => current().resume(),
  step: () => current().step(),
  stop: () => current().stop(),
  setSpeed: (speed: number) => {
    current().speed = speed;
  },
};

export type LiveRunWorkerApi = typeof liveRunWorkerApi;

expose(liveRunWorkerApi);
