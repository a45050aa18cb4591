/**
 * The trace debugger: open a schedule file written by `dirtyring stress` (drop it, pick it, or
 * give its URL — also as `?view=trace&trace=URL`), replay it in the scheduler worker, check the
 * replay's trace hash against the recorded one, and step forward and back through the run:
 * each step's trace line, its effect on rings, SPTEs and memory, and the explanation when the
 * invariant broke. A bad file or a dead worker is reported in the page, which stays usable.
 */
import { probe } from '../app-state.js';
import { button, el } from '../dom.js';
import type { TraceReplay } from '../../stress/controlled/trace-replay.js';
import { renderExplanation } from './explain-render.js';
import { errorText, replayInWorker } from '../scheduler-client.js';
import { describeChanges, renderPages, renderRings } from './step-render.js';

/** Trace lines shown around the current step. */
const TRACE_WINDOW = 12;

export class TraceView {
  readonly root: HTMLElement;
  private readonly file = el('input', { id: 'trace-file', type: 'file', accept: '.json,application/json' });
  private readonly url = el('input', { id: 'trace-url', type: 'url', placeholder: 'https://…/schedule.json', size: '48' });
  private readonly openUrl = button('trace-open', 'Open URL', 'Fetch the schedule file at this URL and replay it');
  private readonly status = el('p', { id: 'trace-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Drop a schedule file written by dirtyring stress (stress-traces/*.json), pick one, or open one by URL.' });
  private readonly alert = el('div', { id: 'trace-alert', class: 'alert', role: 'alert', hidden: '' });
  private readonly body = el('div', { id: 'trace-body' });
  private replay: TraceReplay | null = null;
  private position = 0;
  private busy = false;

  constructor(query: URLSearchParams) {
    const drop = el('div', { class: 'dropzone', id: 'trace-drop' },
      el('div', { class: 'field' }, el('label', { for: 'trace-file', text: 'Schedule file' }), this.file),
      el('div', { class: 'field' }, el('label', { for: 'trace-url', text: 'or its URL' }), this.url),
      this.openUrl,
    );
    this.root = el('section', { id: 'view-trace', class: 'view', 'aria-label': 'Trace debugger' }, drop, this.status, this.alert, this.body);
    this.file.addEventListener('change', () => {
      const f = this.file.files?.[0];
      if (f) void f.text().then((t) => this.load(t, f.name), (e: unknown) => this.fail(`cannot read ${f.name}: ${errorText(e)}`));
    });
    this.openUrl.addEventListener('click', () => void this.fetchAndLoad(this.url.value.trim()));
    drop.addEventListener('dragover', (e) => e.preventDefault());
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = e.dataTransfer?.files[0];
      if (f) void f.text().then((t) => this.load(t, f.name));
    });
    document.addEventListener('keydown', (e) => this.onKey(e));
    const fromUrl = query.get('trace');
    if (fromUrl) {
      this.url.value = fromUrl;
      void this.fetchAndLoad(fromUrl);
    }
  }

  private async fetchAndLoad(url: string): Promise<void> {
    if (url === '') return this.fail('Give the URL of a schedule file.');
    let text: string;
    try {
      const r = await fetch(url);
      if (!r.ok) return this.fail(`${url}: HTTP ${r.status} ${r.statusText}`);
      text = await r.text();
    } catch (e) {
      return this.fail(`${url}: ${errorText(e)}`);
    }
    await this.load(text, url.split('/').pop() || url);
  }

  private fail(message: string): void {
    probe.trace.error = message;
    this.alert.hidden = false;
    this.alert.textContent = message;
    this.status.textContent = 'Nothing loaded. Try another file.';
  }

  async load(text: string, source: string): Promise<void> {
    if (this.busy) return this.fail('A replay is already running; wait for it to finish.');
    this.busy = true;
    this.alert.hidden = true;
    probe.trace.error = null;
    this.status.textContent = `Replaying ${source}…`;
    try {
      const r = await replayInWorker(text, source);
      this.replay = r;
      Object.assign(probe.trace, { loaded: source, traceHash: r.traceHash, recordedHash: r.recordedHash, steps: r.snapshots.length - 1 });
      this.status.textContent = `${source}: replayed ${r.trace.length} steps; trace hash ${r.traceHash} ${r.identical ? 'equals the recorded one' : `DIFFERS from the recorded ${r.recordedHash}`}.`;
      this.goto(0);
    } catch (e) {
      this.fail(`Cannot replay ${source}: ${errorText(e)}`);
    } finally {
      this.busy = false;
    }
  }

  private onKey(e: KeyboardEvent): void {
    const tag = (e.target as HTMLElement | null)?.tagName;
    if (!this.replay || this.root.hidden || !this.root.isConnected || tag === 'INPUT' || tag === 'SELECT') return;
    const last = this.replay.snapshots.length - 1;
    const to = { ArrowRight: this.position + 1, ArrowLeft: this.position - 1, Home: 0, End: last }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    this.goto(to);
  }

  /** Show snapshot k (0: before the first move). */
  goto(k: number): void {
    const r = this.replay;
    if (!r) return;
    const last = r.snapshots.length - 1;
    this.position = Math.max(0, Math.min(last, k));
    probe.trace.position = this.position;
    this.render(r);
  }

  private render(r: TraceReplay): void {
    const k = this.position;
    const snap = r.snapshots[k]!;
    const prev = k > 0 ? r.snapshots[k - 1]! : null;
    const from = prev?.steps ?? 0;
    this.body.replaceChildren(
      this.summary(r),
      this.stepper(r),
      el('div', { class: 'grid2' },
        el('div', { class: 'panel' }, el('h2', { text: `Step ${k} of ${r.snapshots.length - 1}: the move` }), this.traceLines(r, from, snap.steps),
          el('h2', { text: 'Its effect' }), el('ul', { id: 'trace-effect' }, ...describeChanges(snap, prev).map((t) => el('li', { text: t })))),
        el('div', { class: 'panel' }, el('h2', { text: 'Rings' }), renderRings(snap, prev), el('h2', { text: 'SPTEs and memory' }), renderPages(snap, prev)),
      ),
      el('div', { class: 'panel' }, el('h2', { text: 'Why the invariant broke' }), renderExplanation(r.explanation, snap.steps, (s) => this.gotoSteps(s))),
    );
  }

  /** Go to the first snapshot taken after `steps` moves. */
  private gotoSteps(steps: number): void {
    const i = this.replay?.snapshots.findIndex((s) => s.steps >= steps) ?? -1;
    if (i >= 0) this.goto(i);
  }

  private summary(r: TraceReplay): HTMLElement {
    const row = (k: string, v: string, id = ''): HTMLElement => el('tr', {}, el('th', { text: k }), el('td', id ? { id, text: v } : { text: v }));
    return el('table', { class: 'trace-summary', 'aria-label': 'Replay summary' },
      row('file', r.source),
      row('scenario', `${r.config}; memory model ${r.memoryModel}; mutants ${r.mutants.join(', ') || 'none'}; seed ${r.seed}`),
      row('trace hash', `${r.traceHash} (recorded ${r.recordedHash}) — ${r.identical ? 'identical' : 'DIFFERENT'}`, 'trace-hash'),
      row('outcome', `${r.outcome} (${r.cls}); recorded ${r.recordedOutcome}${r.abort ? `; run ${r.abort}: ${r.abortDetail}` : ''}`),
    );
  }

  private stepper(r: TraceReplay): HTMLElement {
    const last = r.snapshots.length - 1;
    const mk = (id: string, text: string, title: string, to: number): HTMLButtonElement => {
      const b = button(id, text, title);
      b.disabled = to < 0 || to > last || to === this.position;
      b.addEventListener('click', () => {
        this.goto(to);
        document.getElementById(id)?.focus();
      });
      return b;
    };
    const slider = el('input', { id: 'trace-step', type: 'range', min: '0', max: String(last), value: String(this.position) });
    slider.addEventListener('input', () => this.goto(slider.valueAsNumber));
    return el('div', { class: 'buttons', role: 'toolbar', 'aria-label': 'Step through the replay (arrow keys, Home, End)' },
      mk('trace-first', 'First', 'The start (Home)', 0),
      mk('trace-back', 'Back', 'One step back (←)', this.position - 1),
      mk('trace-forward', 'Forward', 'One step forward (→)', this.position + 1),
      mk('trace-last', 'Last', 'The end (End)', last),
      el('div', { class: 'field' }, el('label', { for: 'trace-step', text: `Step ${this.position}/${last}` }), slider),
    );
  }

  private traceLines(r: TraceReplay, from: number, to: number): HTMLElement {
    const lo = Math.max(0, from - TRACE_WINDOW / 2);
    const hi = Math.min(r.trace.length, Math.max(to, from + 1) + TRACE_WINDOW / 2);
    const lines = r.trace.slice(lo, hi).map((t, i) => el('li', { class: lo + i >= from && lo + i < to ? 'current' : '', text: t }));
    return el('ul', { class: 'trace-lines' }, ...lines);
  }
}
