/**
 * The run's controls: one labelled input per configuration field (log mode, vCPUs, memory,
 * ring size, workload, device writers, mutant, seed, harvester, iterations, interval, memory
 * model; a C harvester's .wasm file), the run buttons (start, pause/resume, step, stop), the speed, and the link that
 * reproduces the configuration.
 */
import { button, el, numberField, selectField } from '../dom.js';
import { harvesterChoices } from '../harvesters.js';
import { type LiveConfig, choicesOf, configToQuery } from './live-config.js';
import { SPEEDS } from './live-run.js';
import type { WasmFile } from '../wasm-choices.js';
import { buildWasmPicker } from '../wasm-picker.js';

export interface ControlPanel {
  readonly root: HTMLElement;
  readonly start: HTMLButtonElement;
  readonly pause: HTMLButtonElement;
  readonly step: HTMLButtonElement;
  readonly stop: HTMLButtonElement;
  readonly speed: HTMLSelectElement;
  readonly link: HTMLAnchorElement;
  /** The configuration the inputs hold now. */
  read(): LiveConfig;
  /** Refresh the reproduction link from the inputs. */
  refreshLink(): void;
  /** The C harvester module the user picked (sent to the run's worker when it is the harvester). */
  wasmFile(): WasmFile | null;
  /** Lock the configuration while a run uses it. */
  setRunning(running: boolean): void;
}

const options = (values: readonly string[], none = 'none') => values.map((v) => ({ value: v, label: v === '' ? none : v }));

export function buildControls(initial: LiveConfig, basePath: string): ControlPanel {
  const f = {
    log: selectField('cfg-log', 'Log mode', options(choicesOf('log')!), initial.log),
    vcpus: numberField('cfg-vcpus', 'vCPUs', initial.vcpus, 1, 64),
    memoryMiB: numberField('cfg-memory', 'Memory (MiB)', initial.memoryMiB, 1, 1024),
    ringEntries: numberField('cfg-ring', 'Ring entries', initial.ringEntries, 128, 65536),
    workload: selectField('cfg-workload', 'Workload', options(choicesOf('workload')!), initial.workload),
    deviceWriters: numberField('cfg-devices', 'Device writers', initial.deviceWriters, 0, 8),
    mutant: selectField('cfg-mutant', 'Mutant', options(choicesOf('mutant')!), initial.mutant),
    seed: numberField('cfg-seed', 'Seed', initial.seed, 0, 2 ** 31 - 1),
    harvester: selectField('cfg-harvester', 'Harvester', harvesterChoices().map((h) => ({ value: h.id, label: h.label })), initial.harvester),
    iterations: numberField('cfg-iterations', 'Iterations', initial.iterations, 1, 100000),
    intervalMs: numberField('cfg-interval', 'Iteration (ms)', initial.intervalMs, 1, 60000),
    memoryModel: selectField('cfg-wmm', 'Memory model (controlled runs: stress tab)', options(choicesOf('memoryModel')!), initial.memoryModel),
  };
  const start = button('btn-start', 'Start', 'Start a run with this configuration');
  const pause = button('btn-pause', 'Pause', 'Pause between iterations (key p)');
  const step = button('btn-step', 'Step', 'Run one iteration, then pause (key n)');
  const stop = button('btn-stop', 'Stop', 'Stop the run');
  const speed = selectField('cfg-speed', 'Speed', SPEEDS.map((s, i) => ({ value: String(i), label: s.label })), '0');
  const link = el('a', { id: 'repro-link', href: '#', text: 'Link to this configuration' });
  const read = (): LiveConfig => ({
    log: f.log.input.value as LiveConfig['log'],
    vcpus: f.vcpus.input.valueAsNumber,
    memoryMiB: f.memoryMiB.input.valueAsNumber,
    ringEntries: f.ringEntries.input.valueAsNumber,
    workload: f.workload.input.value as LiveConfig['workload'],
    deviceWriters: f.deviceWriters.input.valueAsNumber,
    mutant: f.mutant.input.value,
    seed: f.seed.input.valueAsNumber,
    harvester: f.harvester.input.value,
    iterations: f.iterations.input.valueAsNumber,
    intervalMs: f.intervalMs.input.valueAsNumber,
    memoryModel: f.memoryModel.input.value as LiveConfig['memoryModel'],
  });
  const refreshLink = (): void => {
    link.href = `${basePath}?view=live&${configToQuery(read())}`;
  };
  const picker = buildWasmPicker(f.harvester.input, initial.harvester, refreshLink);
  const fields = Object.values(f);
  for (const x of fields) x.input.addEventListener('change', refreshLink);
  refreshLink();
  const root = el(
    'section',
    { class: 'controls', 'aria-label': 'Run configuration and controls' },
    el('fieldset', {}, el('legend', { text: 'Configuration' }), ...fields.map((x) => x.wrap), picker.wrap),
    el('div', { class: 'buttons', role: 'toolbar', 'aria-label': 'Run controls' }, start, pause, step, stop, speed.wrap, link),
  );
  const setRunning = (running: boolean): void => {
    for (const x of [...fields, picker]) x.input.disabled = running;
    start.disabled = running;
    pause.disabled = step.disabled = stop.disabled = !running;
  };
  setRunning(false);
  return { root, start, pause, step, stop, speed: speed.input, link, read, refreshLink, wasmFile: picker.file, setRunning };
}
