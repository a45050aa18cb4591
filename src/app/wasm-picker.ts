/**
 * The harvester control's file picker (the live view's and the stress view's): a C harvester the user built with
 * `dirtyring build-harvester`. The file is checked in the page as soon as it is picked (the
 * loader's checks, so the reason is the one the CLI would give) and again in the run's worker,
 * which compiles the module it runs. A good module becomes the harvester list's last entry and
 * is chosen; a bad one is named in the note beside the picker and the list is left as it was.
 */
import { el } from './dom.js';
import { C_EXAMPLES_MISSING, UPLOADED_WASM_ID, type WasmFile, checkedWasm, threadsNote } from './wasm-choices.js';

export interface WasmPicker {
  readonly wrap: HTMLElement;
  readonly input: HTMLInputElement;
  /** The picked module, if it passed the checks. */
  file(): WasmFile | null;
}

/** The ids of the picker's input and of its note (each view has its own). */
export interface WasmPickerIds {
  readonly input: string;
  readonly note: string;
}

const LIVE_IDS: WasmPickerIds = { input: 'cfg-harvester-file', note: 'harvester-file-note' };

/** `initial`: the harvester the link named; the picked file's id gets a placeholder entry until a file is picked. */
export function buildWasmPicker(select: HTMLSelectElement, initial: string, onChange: () => void, ids: WasmPickerIds = LIVE_IDS): WasmPicker {
  const id = ids.input;
  const input = el('input', { id, name: id, type: 'file', accept: '.wasm,application/wasm', 'aria-describedby': ids.note });
  const note = el('p', { id: ids.note, class: 'small', role: 'status', 'aria-live': 'polite' });
  note.textContent = C_EXAMPLES_MISSING ?? 'A C harvester compiled with `npx dirtyring build-harvester my.c`.';
  let picked: WasmFile | null = null;
  const option = (): HTMLOptionElement | null => select.querySelector(`option[value="${UPLOADED_WASM_ID}"]`);
  if (initial === UPLOADED_WASM_ID) {
    select.append(el('option', { value: UPLOADED_WASM_ID, text: 'C harvester: no file picked yet (pick one below)' }));
    select.value = UPLOADED_WASM_ID;
  }
  const refuse = (message: string): void => {
    picked = null;
    option()?.remove();
    if (select.value === '' || select.value === UPLOADED_WASM_ID) select.value = select.options[0]?.value ?? '';
    note.textContent = message;
    note.classList.add('error');
    onChange();
  };
  input.addEventListener('change', () => {
    const f = input.files?.[0];
    if (!f) return;
    f.arrayBuffer().then((buffer) => {
      const bytes = new Uint8Array(buffer);
      const definition = checkedWasm(f.name, bytes);
      picked = { name: f.name, bytes };
      const o = option() ?? select.appendChild(el('option', { value: UPLOADED_WASM_ID }));
      o.textContent = `C harvester: ${f.name} (${definition.log} mode${threadsNote(definition.threads)})`;
      select.value = UPLOADED_WASM_ID;
      note.textContent = `${f.name}: a ${definition.log}-mode harvester${definition.threads === undefined ? '' : ` on ${definition.threads} threads of its own`}, ${bytes.length} bytes; chosen above.`;
      note.classList.remove('error');
      onChange();
    }).catch((e: unknown) => refuse(`Cannot use ${f.name}: ${e instanceof Error ? e.message : String(e)}`));
  });
  const wrap = el('div', { class: 'field wide-field' }, el('label', { for: id, text: 'C harvester file (.wasm)' }), input, note);
  return { wrap, input, file: () => picked };
}
