/**
 * The explanation of a broken invariant (src/stress/controlled/explain.ts), as a table with one
 * column per participant and one row per event, so that who did what, in which order, reads
 * like a happens-before diagram; the rows up to the debugger's position are lit, the stale
 * reads and the violation marked, and the missing release/acquire pairs listed below.
 */
import type { Explanation } from '../../stress/controlled/explain.js';
import { el } from '../dom.js';

export function renderExplanation(x: Explanation | null, currentStep: number, onPick: (step: number) => void): HTMLElement {
  if (x === null) return el('p', { class: 'small', text: 'The per-step invariant held at every step of this replay: nothing to explain.' });
  const head = el('tr', {}, el('th', { text: 'step' }), ...x.participants.map((p) => el('th', { text: p })));
  const rows = x.rows.map((r) => {
    const cells = x.participants.map((_, p) => el('td', { text: p === r.participant ? r.text : '' }));
    const link = el('button', { type: 'button', class: 'linkish', title: `go to step ${r.step + 1}`, text: String(r.step) });
    link.addEventListener('click', () => onPick(r.step + 1));
    const cls = [r.mark, r.step < currentStep ? 'past' : 'future'].filter(Boolean).join(' ');
    return el('tr', { class: cls }, el('td', {}, link), ...cells);
  });
  return el(
    'div',
    { class: 'explanation' },
    el('p', {}, el('strong', { text: `Invariant broken at step ${x.step}, page ${x.page}: ` }), x.reason),
    el('table', { 'aria-label': 'Explanation: events per participant' }, head, ...rows),
    ...(x.notes.length > 0 ? [el('h3', { text: 'Missing orderings' }), el('ul', {}, ...x.notes.map((n) => el('li', { text: n })))] : []),
  );
}
