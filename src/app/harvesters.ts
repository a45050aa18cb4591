/**
 * The harvesters a live run can put in userspace's place. Each entry builds a LogCollector for
 * the run's VM; the built-in one is the log mode's QEMU-style collector. The list is open:
 * `registerHarvester` adds one (an SDK example, say) under its own id, and the controls offer it.
 */
import type { Memslot } from '../kernel/memslots.js';
import type { Vm } from '../kernel/vm.js';
import type { RunConfig } from '../harness/run-config.js';
import type { HarvesterDefinition } from '../harvester/contract.js';
import { UserHarvesterCollector } from '../harvester/user-collector.js';
import { createHarvester } from '../stress/harvesters/harvester-variants.js';
// The SDK's examples, bundled with the page (their `dirtyring` import is the browser entry,
// aliased in vite.config.ts): the same code `--harvester` runs in Node. Those with `threads`
// run on harvester-thread workers of their own (harvester-thread-host.ts).
import copyBeforeReset from '../../examples/harvesters/copy-before-reset.js';
import flagHandoffReset from '../../examples/harvesters/flag-handoff-reset.js';
import flagHandoffResetRelease from '../../examples/harvesters/flag-handoff-reset-release.js';
import perVcpuThreads from '../../examples/harvesters/per-vcpu-threads.js';
import secondThreadReset from '../../examples/harvesters/second-thread-reset.js';
import getChunkedClear from '../../examples/harvesters/get-chunked-clear.js';
import qemuReaper from '../../examples/harvesters/qemu-reaper.js';
import skipsEntry from '../../examples/harvesters/skips-entry.js';
import unalignedClear from '../../examples/harvesters/unaligned-clear.js';
import { userspaceFaults } from '../userspace/faults.js';
import type { LogCollector, LogMode } from '../userspace/log-collectors.js';
import { UPLOADED_WASM_ID, type WasmChoice, type WasmFile, cExampleChoices, checkedWasm, threadsNote } from './wasm-choices.js';

export interface HarvesterChoice {
  readonly id: string;
  readonly label: string;
  /** The log mode it needs (null: any). */
  readonly log: LogMode | null;
  /** The collector on the run's thread (a harvester with threads of its own is built from its definition instead). */
  create(vm: Vm, slots: readonly Memslot[], config: RunConfig): LogCollector;
  /** Where the rings go: a WebAssembly harvester's shared memory (HarvesterDefinition.ringSpace). */
  readonly ringSpace?: NonNullable<HarvesterDefinition['ringSpace']>;
  /** A user's harvester (an SDK example, a C module): its definition, which a stress campaign runs in the collector's place. */
  readonly definition?: () => HarvesterDefinition;
}

const variant = (name: 'standard' | 'unaligned-clear' | 'hostile-wrap') => (vm: Vm, slots: readonly Memslot[], c: RunConfig): LogCollector =>
  createHarvester(name, c.log, vm, c.vcpus, slots, c.clearChunkPages, userspaceFaults(c.mutants)).collector;

/** An SDK harvester on the run's userspace thread, judged like a built-in collector. */
const sdk = (definition: HarvesterDefinition) => (vm: Vm, slots: readonly Memslot[], c: RunConfig): LogCollector =>
  new UserHarvesterCollector(definition, vm, c.vcpus, slots);

const sdkChoice = (definition: HarvesterDefinition, what: string): HarvesterChoice => ({
  id: `sdk-${definition.name}`,
  label: `SDK example: ${what} (${definition.log} mode${threadsNote(definition.threads)})`,
  log: definition.log,
  create: sdk(definition),
  definition: () => definition,
});

/**
 * A C harvester: its module is compiled and checked when the run's worker first asks for its
 * log mode, not when the page lists it.
 */
export function wasmChoice(w: WasmChoice): HarvesterChoice {
  return {
    id: w.id,
    label: w.label,
    get log() {
      return w.definition().log;
    },
    create: (vm, slots, c) => sdk(w.definition())(vm, slots, c),
    ringSpace: (vcpus, ringBytes) => w.definition().ringSpace!(vcpus, ringBytes),
    definition: w.definition,
  };
}

/** The module the user picked, checked now (a bad one throws its reason). */
export function uploadedChoice(file: WasmFile): HarvesterChoice {
  const definition = checkedWasm(file.name, file.bytes);
  return wasmChoice({ id: UPLOADED_WASM_ID, label: `C harvester: ${file.name}`, definition: () => definition });
}

const CHOICES: HarvesterChoice[] = [
  { id: 'builtin', label: 'built-in (the log mode\u2019s collector)', log: null, create: variant('standard') },
  { id: 'unaligned-clear', label: 'unaligned CLEAR (clear mode)', log: 'clear', create: variant('unaligned-clear') },
  { id: 'hostile-wrap', label: 'hostile userspace (ring mode)', log: 'ring', create: variant('hostile-wrap') },
  sdkChoice(qemuReaper, 'QEMU-style reaper'),
  sdkChoice(getChunkedClear, 'GET + chunked CLEAR'),
  sdkChoice(skipsEntry, 'skips an entry (buggy)'),
  sdkChoice(copyBeforeReset, 'copies before the reset (buggy)'),
  sdkChoice(unalignedClear, 'unaligned CLEAR (buggy)'),
  sdkChoice(perVcpuThreads, 'per-vCPU reaper threads'),
  sdkChoice(secondThreadReset, 'reset from an unsynchronised thread (buggy)'),
  sdkChoice(flagHandoffReset, 'flag hand-off to the resetting thread (buggy, arm64 only)'),
  sdkChoice(flagHandoffResetRelease, 'flag hand-off, release/acquire'),
  ...cExampleChoices().map(wasmChoice),
];

/** Ids of the harvesters known when the page loaded (registered ones are appended); the picked file's last. */
export const HARVESTER_IDS: string[] = [...CHOICES.map((c) => c.id), UPLOADED_WASM_ID];

export function harvesterChoices(): readonly HarvesterChoice[] {
  return CHOICES;
}

export function findHarvester(id: string): HarvesterChoice | undefined {
  return CHOICES.find((c) => c.id === id);
}

/** Add a harvester (e.g. an SDK example); its id must be new. */
export function registerHarvester(choice: HarvesterChoice): void {
  if (findHarvester(choice.id)) throw new Error(`harvester "${choice.id}" is already registered`);
  CHOICES.push(choice);
  HARVESTER_IDS.splice(HARVESTER_IDS.length - 1, 0, choice.id);
}
