/**
 * A stress campaign run in the page, controlled (micro-runs under the scheduler) or free
 * (`dirtyring run`s of generated configurations on real worker threads), with its outcome
 * histogram (jcstress-style: a bar per outcome, coloured by class, the counts read from shared
 * memory on every frame). The built-in collectors, or a user's harvester in their place (an SDK
 * example, a shipped C example, a .wasm the user picks), as `dirtyring stress --harvester` runs
 * it. The campaign runs in its own worker; Stop asks it to end after the run in progress.
 */
import { MEMORY_MODELS } from '../../kernel/wmm/ordering.js';
import { HistogramWords, OUTCOME_KINDS, histogramBuffer, readHistogram } from '../../stress/outcome-histogram.js';
import { OUTCOMES } from '../../stress/outcome.js';
import { STRESS_MODES, type StressMode } from '../../stress/stress-mode.js';
import type { PageCampaignResult } from '../../stress/page-campaign.js';
import { LOG_MODES, type LogMode } from '../../userspace/log-collectors.js';
import { MUTANT_NAMES } from '../../userspace/known-bugs.js';
import { probe } from '../app-state.js';
import { button, el, numberField, selectField } from '../dom.js';
import { fitCanvas } from '../draw/canvas.js';
import type { LiveConfig } from '../live/live-config.js';
import { campaignInWorker, errorText } from '../scheduler-client.js';
import { type HarvesterControl, buildHarvesterControl, rerunCommand } from '../harvester-control.js';

const CLASS_COLORS = { acceptable: '#22c55e', interesting: '#eab308', forbidden: '#ef4444', error: '#a855f7' } as const;
const BAR_HEIGHT = 20;
/** A campaign is bounded: generous for 100 000 micro-runs on a slow machine. */
const CAMPAIGN_TIMEOUT_MS = 30 * 60_000;

export class StressView {
  readonly root: HTMLElement;
  private readonly mode = selectField('st-mode', 'Mode', STRESS_MODES.map((m) => ({ value: m, label: m })), 'controlled');
  private readonly runs = numberField('st-runs', 'Runs', 200, 1, 100000);
  private readonly seed;
  private readonly mutant;
  private readonly model;
  private readonly log = selectField('st-log', 'Log mode', ['', ...LOG_MODES].map((m) => ({ value: m, label: m || 'any' })), '');
  private readonly start = button('st-start', 'Run campaign', 'Run a controlled stress campaign in the page');
  private readonly stop = button('st-stop', 'Stop', 'Stop after the run in progress');
  private readonly status = el('p', { id: 'st-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Controlled runs under the scheduler, classified by outcome.' });
  private readonly alert = el('div', { id: 'st-alert', class: 'alert', role: 'alert', hidden: '' });
  private readonly canvas = el('canvas', { id: 'histogram', role: 'img', 'aria-label': 'Outcome histogram' });
  private readonly table = el('table', { id: 'st-table', 'aria-label': 'Outcomes' });
  private readonly rerun = el('p', { id: 'st-rerun', class: 'small', hidden: '' });
  private readonly harvester: HarvesterControl;
  private histogram: Int32Array | null = null;
  private lastTable = -1;

  /** The seed, mutant, memory model and harvester start from the page's configuration (the URL's). */
  constructor(initial: Pick<LiveConfig, 'seed' | 'mutant' | 'memoryModel' | 'harvester'>) {
    this.seed = numberField('st-seed', 'Seed', initial.seed, 0, 2 ** 31 - 1);
    this.mutant = selectField('st-mutant', 'Mutant', ['', ...Object.keys(MUTANT_NAMES)].map((m) => ({ value: m, label: m || 'none' })), initial.mutant);
    this.model = selectField('st-wmm', 'Memory model', MEMORY_MODELS.map((m) => ({ value: m, label: m })), initial.memoryModel);
    this.harvester = buildHarvesterControl('st', initial.harvester, () => this.harvesterChanged());
    this.stop.disabled = true;
    this.root = el(
      'section',
      { id: 'view-stress', class: 'view', 'aria-label': 'Stress campaign' },
      el('section', { class: 'controls' },
        el('fieldset', {}, el('legend', { text: 'Campaign (random strategy when controlled)' }), this.mode.wrap, this.runs.wrap, this.seed.wrap, this.mutant.wrap, this.model.wrap, this.log.wrap),
        el('fieldset', {}, el('legend', { text: 'Harvester (in the collector\u2019s place)' }), ...this.harvester.wraps),
        el('div', { class: 'buttons', role: 'toolbar', 'aria-label': 'Campaign controls' }, this.start, this.stop),
      ),
      this.status,
      this.rerun,
      this.alert,
      el('div', { class: 'panel' }, el('h2', { text: 'Outcome histogram' }), this.canvas, this.table),
    );
    this.mode.input.addEventListener('change', () => this.modeChanged());
    this.start.addEventListener('click', () => void this.run());
    this.stop.addEventListener('click', () => {
      if (this.histogram) Atomics.store(this.histogram, HistogramWords.STOP, 1);
    });
    this.harvesterChanged();
    requestAnimationFrame(this.frame);
  }

  /** A harvester drives its own log mode, and mutant campaigns judge the built-in collectors (as in the CLI). */
  private harvesterChanged(): void {
    const user = this.harvester.id() !== 'builtin';
    const log = this.harvester.log();
    if (user) this.mutant.input.value = '';
    this.mutant.input.disabled = user;
    if (log !== null) this.log.input.value = log;
    this.log.input.disabled = user;
  }

  /** Free runs race on the hardware's memory model: the model applies to controlled runs only. */
  private modeChanged(): void {
    const free = this.mode.input.value === 'free';
    if (free) this.model.input.value = 'sc';
    this.model.input.disabled = free;
    this.start.title = free ? 'Run a free stress campaign (real worker threads) in the page' : 'Run a controlled stress campaign in the page';
  }

  private async run(): Promise<void> {
    const buffer = histogramBuffer();
    this.histogram = new Int32Array(buffer);
    this.alert.hidden = true;
    this.rerun.hidden = true;
    this.start.disabled = true;
    this.stop.disabled = false;
    Object.assign(probe.stress, { runs: 0, done: false, histogram: {}, error: null, harvester: null, firstForbiddenSeed: null, harvesterThreadWorkers: 0 });
    const req = {
      mode: this.mode.input.value as StressMode,
      runs: this.runs.input.valueAsNumber,
      seed: this.seed.input.valueAsNumber,
      mutant: this.mutant.input.value,
      memoryModel: this.model.input.value as (typeof MEMORY_MODELS)[number],
      log: (this.log.input.value || null) as LogMode | null,
    };
    const harvester = this.harvester.id();
    const wasm = this.harvester.wasm();
    this.status.textContent = `Running ${req.runs} ${req.mode} runs from seed ${req.seed}…`;
    try {
      const r = await campaignInWorker(req, buffer, harvester, wasm, CAMPAIGN_TIMEOUT_MS);
      probe.stress.harvester = r.harvester?.name ?? null;
      probe.stress.harvesterThreadWorkers = r.harvesterThreadWorkers;
      probe.stress.firstForbiddenSeed = r.firstForbidden?.seed ?? null;
      this.status.textContent = this.describe(r);
      const failed = r.firstForbidden ?? r.firstError;
      if (failed && r.harvester) {
        this.rerun.hidden = false;
        this.rerun.textContent = `Rerun the first ${r.firstForbidden ? 'forbidden' : 'failed'} run in Node: ${rerunCommand(harvester, wasm, r.mode, failed.seed, r.memoryModel)}`;
      }
    } catch (e) {
      probe.stress.error = errorText(e);
      this.alert.hidden = false;
      this.alert.textContent = `The campaign failed: ${errorText(e)}`;
      this.status.textContent = 'Campaign ended early.';
    } finally {
      probe.stress.done = true;
      this.start.disabled = false;
      this.stop.disabled = true;
      this.drawNow();
    }
  }

  private describe(r: PageCampaignResult): string {
    const f = r.firstForbidden ?? r.firstError;
    const first = f ? ` First ${r.firstForbidden ? 'forbidden' : 'failed'} run: seed ${f.seed} (${f.config}): ${f.outcomes.join(', ')}${f.detail ? ` — ${f.detail.split('\n')[0]}` : ''}.` : '';
    const where = r.mode === 'free' ? 'on real worker threads' : `under the ${r.memoryModel} memory model`;
    const threads = r.harvester && r.harvester.threads > 0 ? `, ${r.harvester.threads} threads of its own${r.mode === 'controlled' ? ' (participants H0, H1…)' : ''}` : '';
    const who = r.harvester ? ` of harvester ${r.harvester.name} (${r.harvester.log} mode${threads})` : '';
    // Runs that failed without a verdict (a harvester that throws or traps, a worker that died).
    const counts = this.histogram ? readHistogram(this.histogram) : {};
    const errors = OUTCOME_KINDS.reduce((n, k) => n + (OUTCOMES[k].cls === 'error' ? (counts[k] ?? 0) : 0), 0);
    const failed = errors > 0 ? `, ${errors} failed with an error (purple bars)` : '';
    return `${r.runs} ${r.mode} runs${who} ${where} in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.forbidden} forbidden${failed}.${first}`;
  }

  private readonly frame = (): void => {
    requestAnimationFrame(this.frame);
    if (!this.root.hidden && this.histogram) this.drawNow();
  };

  private drawNow(): void {
    const h = this.histogram;
    if (!h) return;
    const counts = readHistogram(h);
    const runs = Atomics.load(h, HistogramWords.RUNS);
    probe.stress.runs = runs;
    probe.stress.histogram = counts;
    const kinds = OUTCOME_KINDS.filter((k) => (counts[k] ?? 0) > 0 || k === 'clean');
    const width = Math.max(360, (this.canvas.parentElement?.clientWidth ?? 800) - 24);
    const ctx = fitCanvas(this.canvas, width, kinds.length * (BAR_HEIGHT + 6) + 8);
    ctx.fillStyle = '#141923';
    ctx.fillRect(0, 0, width, kinds.length * (BAR_HEIGHT + 6) + 8);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const labelW = 170;
    const max = Math.max(1, ...kinds.map((k) => counts[k] ?? 0));
    kinds.forEach((k, i) => {
      const y = 4 + i * (BAR_HEIGHT + 6);
      const n = counts[k] ?? 0;
      ctx.fillStyle = '#cbd5e1';
      ctx.fillText(k, 6, y + BAR_HEIGHT / 2);
      ctx.fillStyle = CLASS_COLORS[OUTCOMES[k].cls];
      ctx.fillRect(labelW, y, Math.max(n > 0 ? 2 : 0, ((width - labelW - 90) * n) / max), BAR_HEIGHT);
      ctx.fillStyle = '#e2e8f0';
      ctx.fillText(`${n} (${runs ? ((100 * n) / runs).toFixed(1) : '0'} %)`, labelW + ((width - labelW - 90) * n) / max + 6, y + BAR_HEIGHT / 2);
    });
    if (runs !== this.lastTable) {
      this.lastTable = runs;
      this.table.replaceChildren(
        el('tr', {}, el('th', { text: 'outcome' }), el('th', { text: 'class' }), el('th', { text: 'runs' }), el('th', { text: 'meaning' })),
        ...kinds.map((k) => el('tr', {}, el('td', { text: k }), el('td', { text: OUTCOMES[k].cls }), el('td', { text: String(counts[k] ?? 0) }), el('td', { text: OUTCOMES[k].what }))),
      );
    }
  }
}
