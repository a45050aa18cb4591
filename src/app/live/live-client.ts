/**
 * The page's side of the live run's worker (run.worker.ts): creating the run, attaching the
 * VM's shared memory read-only for drawing, and the control calls — each bounded by a timeout,
 * and all failed at once when the worker dies (its 'error' event), so that the page reports a
 * dead worker instead of waiting on it.
 */
import { type Remote, proxy, releaseProxy, wrap } from 'comlink';
import type { RunConfig } from '../../harness/run-config.js';
import type { Memslot } from '../../kernel/memslots.js';
import { Vm } from '../../kernel/vm.js';
import { withTimeout } from '../../platform/async-wait.js';
import type { WasmFile } from '../wasm-choices.js';
import type { LiveConfig } from './live-config.js';
import type { LiveEvents } from './live-run.js';
import { LiveTelemetry } from './live-telemetry.js';
import type { LiveRunWorkerApi } from './run.worker.js';

/** A control call is a message and a flag: anything slower means the worker is stuck. */
const CONTROL_TIMEOUT_MS = 5_000;
/** Building the VM: allocating and protecting guest memory (256 MiB in well under this). */
const CREATE_TIMEOUT_MS = 30_000;

export class LiveRunClient {
  private constructor(
    private readonly worker: Worker,
    private readonly api: Remote<LiveRunWorkerApi>,
    readonly config: RunConfig,
    readonly vm: Vm,
    readonly slots: readonly Memslot[],
    readonly telemetry: LiveTelemetry,
    /** Whether the harvester tells its fetch index (else the page derives it from the ring flags). */
    readonly hasFetchIndex: boolean,
    /** The harvester's threads of its own (0: it runs in the run's worker). */
    readonly harvesterThreads: number,
  ) {}

  /** `onDeath` is called once if the worker dies; the run is over then. */
  /** `wasm`: the module the user picked, sent once (copied) for the worker to compile and check. */
  static async create(input: LiveConfig, events: LiveEvents, onDeath: (message: string) => void, wasm: WasmFile | null = null): Promise<LiveRunClient> {
    const worker = new Worker(new URL('./run.worker.ts', import.meta.url), { type: 'module', name: 'userspace' });
    const api = wrap<LiveRunWorkerApi>(worker);
    let dead: ((e: Error) => void) | null = null;
    const died = new Promise<never>((_, reject) => (dead = reject));
    died.catch(() => undefined);
    worker.addEventListener('error', (e: ErrorEvent) => {
      const message = `the live run's worker died: ${e.message || 'it failed to load'}`;
      dead?.(new Error(message));
      onDeath(message);
    });
    try {
      const setup = await withTimeout(Promise.race([api.create(input, proxy(events), wasm), died]), CREATE_TIMEOUT_MS, 'building the run in its worker');
      const vm = Vm.attach(setup.vm);
      const slots = setup.slots.map((s) => vm.memslots.findById(s.asId, s.id)!);
      return new LiveRunClient(worker, api, setup.config, vm, slots, new LiveTelemetry(setup.telemetry), setup.hasFetchIndex, setup.harvesterThreads);
    } catch (e) {
      api[releaseProxy]();
      worker.terminate();
      throw e;
    }
  }

  private call(what: string, p: Promise<void>): Promise<void> {
    return withTimeout(p, CONTROL_TIMEOUT_MS, `${what} (live run worker)`);
  }

  start(speed: number): Promise<void> {
    return this.call('start', this.api.start(speed));
  }
  pause(): Promise<void> {
    return this.call('pause', this.api.pause());
  }
  resume(): Promise<void> {
    return this.call('resume', this.api.resume());
  }
  step(): Promise<void> {
    return this.call('step', this.api.step());
  }
  stop(): Promise<void> {
    return this.call('stop', this.api.stop());
  }
  setSpeed(speed: number): Promise<void> {
    return this.call('speed', this.api.setSpeed(speed));
  }

  /** After the run's summary: the worker (its vCPU workers already ended) goes away. */
  close(): void {
    this.api[releaseProxy]();
    this.worker.terminate();
  }
}
