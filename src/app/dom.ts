/** A small element builder: the app's DOM is built once per view, so plain calls suffice. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** A labelled <select>; the label is tied to it by id (screen readers, tests, keyboard). */
export function selectField(id: string, label: string, options: readonly { value: string; label: string }[], value: string): { wrap: HTMLElement; input: HTMLSelectElement } {
  const input = el('select', { id, name: id });
  for (const o of options) input.append(el('option', { value: o.value, text: o.label }));
  input.value = value;
  return { wrap: el('div', { class: 'field' }, el('label', { for: id, text: label }), input), input };
}

/** A labelled number input. */
export function numberField(id: string, label: string, value: number, min: number, max: number): { wrap: HTMLElement; input: HTMLInputElement } {
  const input = el('input', { id, name: id, type: 'number', min: String(min), max: String(max), step: '1', value: String(value) });
  return { wrap: el('div', { class: 'field' }, el('label', { for: id, text: label }), input), input };
}

export function button(id: string, text: string, title: string): HTMLButtonElement {
  return el('button', { id, type: 'button', title, text });
}
