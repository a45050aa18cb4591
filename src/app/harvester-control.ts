/**
 * The harvester control of the stress and migration views: the live view's choice of harvester
 * (the same list less the built-in variants, and the same .wasm file picker, wasm-picker.ts),
 * the log mode the choice drives, and how the CLI names the chosen harvester's module.
 */
import { selectField } from './dom.js';
import { findHarvester } from './harvesters.js';
import { UPLOADED_WASM_ID, type WasmFile, checkedWasm } from './wasm-choices.js';
import { type WasmPicker, buildWasmPicker } from './wasm-picker.js';
import { BUILTIN_COLLECTORS, campaignHarvesterChoices } from './user-harvesters.js';

export interface HarvesterControl {
  readonly select: HTMLSelectElement;
  readonly wraps: readonly HTMLElement[];
  readonly picker: WasmPicker;
  /** The chosen id ('builtin': the built-in collectors). */
  id(): string;
  /** The picked module (sent to the campaign when it is the harvester). */
  wasm(): WasmFile | null;
  /** The log mode the chosen harvester drives (null: the built-in collectors, any mode; or not known yet). */
  log(): string | null;
}

/**
 * `prefix`: the view's id prefix (`st`: ids st-harvester, st-harvester-file, st-harvester-file-note);
 * `initial`: the harvester the page's link named, if the view can run it.
 */
export function buildHarvesterControl(prefix: string, initial: string, onChange: () => void): HarvesterControl {
  const choices = campaignHarvesterChoices();
  const start = choices.some((c) => c.id === initial) || initial === UPLOADED_WASM_ID ? initial : BUILTIN_COLLECTORS;
  const field = selectField(`${prefix}-harvester`, 'Harvester', choices.map((c) => ({ value: c.id, label: c.label })), start);
  const picker = buildWasmPicker(field.input, start, onChange, { input: `${prefix}-harvester-file`, note: `${prefix}-harvester-file-note` });
  field.input.addEventListener('change', onChange);
  const id = (): string => field.input.value;
  const log = (): string | null => {
    const chosen = id();
    if (chosen === BUILTIN_COLLECTORS) return null;
    if (chosen === UPLOADED_WASM_ID) {
      const f = picker.file();
      return f === null ? null : checkedWasm(f.name, f.bytes).log;
    }
    try {
      return findHarvester(chosen)?.log ?? null;
    } catch {
      // A C example that fails its checks: the campaign names the reason when it starts.
      return null;
    }
  };
  return { select: field.input, wraps: [field.wrap, picker.wrap], picker, id, wasm: picker.file, log };
}

/** Where the CLI finds the chosen harvester's module (its source for an SDK example). */
export function modulePath(id: string, wasm: WasmFile | null): string {
  if (id === UPLOADED_WASM_ID) return wasm?.name ?? 'my.wasm';
  if (id.startsWith('sdk-')) return `examples/harvesters/${id.slice(4)}.ts`;
  // A C example: `build-harvester` writes NAME.wasm beside NAME.c.
  if (id.startsWith('c-')) return `examples/harvesters-c/${id.slice(2)}.wasm`;
  return id;
}

/** The command that reruns one run of the campaign in Node (free runs: the same configuration, not the same interleaving). */
export function rerunCommand(id: string, wasm: WasmFile | null, mode: string, seed: number, memoryModel: string): string {
  const harvester = id === BUILTIN_COLLECTORS ? '' : ` --harvester ${modulePath(id, wasm)}`;
  const model = mode === 'controlled' && memoryModel !== 'sc' ? ` --memory-model ${memoryModel}` : '';
  const build = id.startsWith('c-') ? `npx dirtyring build-harvester examples/harvesters-c/${id.slice(2)}.c && ` : '';
  return `${build}npx dirtyring stress --mode ${mode}${harvester}${model} --seed ${seed} --runs 1`;
}
