/**
 * Live migration in the page: pre-copy rounds (the bulk pass, iterations, the stop-and-copy)
 * over a paced link, with the vCPUs dirtying memory meanwhile. Per round: pages sent, of them
 * resent (unchanged since last sent: the cost of coarse tracking), and the pages left with the
 * downtime they would cost; the run converges when that downtime fits the limit. The built-in
 * collector tracks the dirty pages, or a user's harvester (the stress view's choices, as
 * `dirtyring migrate --harvester`), judged by the destination's byte check. The
 * migration runs in its own worker (migration.worker.ts); this thread only draws. The call is
 * bounded, and fails at once if the worker dies.
 */
import { MiB } from '../../base/units.js';
import { proxy, releaseProxy, wrap } from 'comlink';
import { withTimeout } from '../../platform/async-wait.js';
import { LOG_MODES, type LogMode } from '../../userspace/log-collectors.js';
import type { MigrationConfig } from '../../userspace/migration/migration-config.js';
import type { RoundReport } from '../../userspace/migration/migration-report.js';
import type { MigrationGuest, MigrationOutcome, MigrationWorkerApi } from './migration.worker.js';
import { type HarvesterControl, buildHarvesterControl } from '../harvester-control.js';
import type { WasmFile } from '../wasm-choices.js';
import { MigrationLanes } from './migration-lanes.js';
import { laneLegend } from '../live/legend.js';
import { probe } from '../app-state.js';
import { button, el, numberField, selectField } from '../dom.js';
import { fitCanvas } from '../draw/canvas.js';

const COLORS = { sent: '#3b82f6', resent: '#f97316', downtime: '#ef4444', limit: '#94a3b8', final: '#a855f7' } as const;
const CHART_HEIGHT = 260;
/** A migration of the sizes the view offers ends within seconds; a stuck one is reported. */
const MIGRATION_TIMEOUT_MS = 10 * 60_000;

/** Run one migration in a fresh worker; one call, bounded, failed at once if the worker dies. */
async function migrateInWorker(input: Partial<MigrationConfig>, onRound: (r: RoundReport) => void, onGuest: (g: MigrationGuest) => void, harvester: string, wasm: WasmFile | null): Promise<MigrationOutcome> {
  const worker = new Worker(new URL('./migration.worker.ts', import.meta.url), { type: 'module', name: 'migration' });
  const api = wrap<MigrationWorkerApi>(worker);
  const died = new Promise<never>((_, reject) =>
    worker.addEventListener('error', (e: ErrorEvent) => reject(new Error(`the migration worker died: ${e.message || 'it failed to load'}`))),
  );
  died.catch(() => undefined);
  try {
    return await withTimeout(Promise.race([api.migrate(input, proxy(onRound), proxy(onGuest), harvester, wasm), died]), MIGRATION_TIMEOUT_MS, 'the migration');
  } finally {
    api[releaseProxy]();
    worker.terminate();
  }
}

export class MigrationView {
  readonly root: HTMLElement;
  private readonly log = selectField('mg-log', 'Log mode', LOG_MODES.map((m) => ({ value: m, label: m })), 'ring');
  private readonly vcpus = numberField('mg-vcpus', 'vCPUs', 4, 1, 32);
  private readonly memory = numberField('mg-memory', 'Memory (MiB)', 64, 1, 1024);
  private readonly ring = numberField('mg-ring', 'Ring entries', 4096, 64, 65536);
  private readonly bandwidth = numberField('mg-bandwidth', 'Link (MiB/s)', 200, 1, 100000);
  private readonly downtime = numberField('mg-downtime', 'Max downtime (ms)', 50, 1, 10000);
  private readonly rate = numberField('mg-rate', 'Dirty rate (MiB/s per vCPU)', 8, 0, 10000);
  private readonly limit = numberField('mg-limit', 'Dirty-limit (MiB/s, 0 off)', 0, 0, 10000);
  private readonly seed = numberField('mg-seed', 'Seed', 1, 0, 2 ** 31 - 1);
  private readonly start = button('mg-start', 'Migrate', 'Start a live migration');
  private readonly status = el('p', { id: 'mg-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Pre-copy live migration over a paced link while the guest keeps writing.' });
  private readonly alert = el('div', { id: 'mg-alert', class: 'alert', role: 'alert', hidden: '' });
  private readonly chart = el('canvas', { id: 'mg-chart', role: 'img', 'aria-label': 'Pages sent and resent per round, and the downtime each round would leave' });
  private readonly table = el('table', { id: 'mg-rounds', 'aria-label': 'Rounds' });
  private readonly lanesCanvas = el('canvas', { id: 'mg-lanes', role: 'img', 'aria-label': 'Thread lanes of the source vCPUs: running, in guest, stalled on a full ring, throttled by dirty-limit' });
  private readonly lanesNote = el('p', { id: 'mg-throttle', class: 'small', text: 'The source\u2019s vCPUs appear here while a migration runs.' });
  private rounds: RoundReport[] = [];
  private lanes: MigrationLanes | null = null;
  private migrating = false;
  private readonly harvester: HarvesterControl;

  /** `harvester`: the one the page's link named (the stress view's choices; else the built-in collector). */
  constructor(harvester = 'builtin') {
    this.harvester = buildHarvesterControl('mg', harvester, () => this.harvesterChanged());
    const fields = [this.log, this.vcpus, this.memory, this.ring, this.bandwidth, this.downtime, this.rate, this.limit, this.seed];
    this.root = el(
      'section',
      { id: 'view-migration', class: 'view', 'aria-label': 'Live migration' },
      el('section', { class: 'controls' },
        el('fieldset', {}, el('legend', { text: 'Migration' }), ...fields.map((f) => f.wrap)),
        el('fieldset', {}, el('legend', { text: 'Harvester (tracks the dirty pages)' }), ...this.harvester.wraps),
        el('div', { class: 'buttons', role: 'toolbar', 'aria-label': 'Migration controls' }, this.start),
      ),
      this.status,
      this.alert,
      el('div', { class: 'panel' }, el('h2', { text: 'Source vCPUs' }), this.lanesCanvas, laneLegend(false), this.lanesNote),
      el('div', { class: 'panel' }, el('h2', { text: 'Rounds and convergence' }), this.chart, this.legend(), this.table),
    );
    this.start.addEventListener('click', () => void this.run());
    this.harvesterChanged();
  }

  /** A harvester drives its own log mode (as `migrate --harvester`). */
  private harvesterChanged(): void {
    const log = this.harvester.log();
    if (log !== null) this.log.input.value = log;
    this.log.input.disabled = this.harvester.id() !== 'builtin';
  }

  /** While migrating: sample and draw the source's vCPU lanes on every animation frame. */
  private readonly frame = (t: number): void => {
    const lanes = this.lanes;
    if (!lanes) return;
    if (this.migrating) requestAnimationFrame(this.frame);
    if (this.root.hidden) return;
    lanes.draw(this.lanesCanvas, Math.max(360, (this.lanesCanvas.parentElement?.clientWidth ?? 800) - 24), performance.timeOrigin + t);
    probe.migration.throttledSamples = lanes.throttledSamples;
    const share = lanes.samples > 0 ? (100 * lanes.throttledSamples) / lanes.samples : 0;
    const text = !lanes.limited
      ? 'Dirty-limit is off: no vCPU is throttled.'
      : lanes.throttledSamples > 0
        ? `Throttled by dirty-limit in ${share.toFixed(1)} % of the lane samples so far.`
        : 'Dirty-limit on: no vCPU seen throttled yet (it starts once the guest dirties faster than the link sends, two syncs in a row).';
    if (this.lanesNote.textContent !== text) this.lanesNote.textContent = text;
  };

  private legend(): HTMLElement {
    const item = (c: string, t: string) => el('li', {}, el('span', { class: 'swatch', style: `background:${c}` }), t);
    return el('ul', { class: 'legend', 'aria-label': 'Chart legend' },
      item(COLORS.sent, 'pages sent (first time or changed)'), item(COLORS.resent, 'pages resent unchanged'),
      item(COLORS.downtime, 'expected downtime of the pages left'), item(COLORS.limit, 'max downtime'));
  }

  private async run(): Promise<void> {
    this.rounds = [];
    this.alert.hidden = true;
    this.start.disabled = true;
    Object.assign(probe.migration, { done: false, rounds: 0, error: null, throttledSamples: 0, harvester: null, mismatchedPages: null });
    this.lanes = null;
    this.migrating = true;
    this.status.textContent = 'Migrating…';
    this.draw();
    try {
      const s = await migrateInWorker(
        {
          log: this.log.input.value as LogMode,
          vcpus: this.vcpus.input.valueAsNumber,
          memoryBytes: this.memory.input.valueAsNumber * MiB,
          ringEntries: this.ring.input.valueAsNumber,
          bandwidthMiBs: this.bandwidth.input.valueAsNumber,
          maxDowntimeMs: this.downtime.input.valueAsNumber,
          dirtyRateMiBs: this.rate.input.valueAsNumber,
          dirtyLimitMiBs: this.limit.input.valueAsNumber,
          seed: this.seed.input.valueAsNumber,
        },
        (r) => {
          this.rounds.push(r);
          probe.migration.rounds = this.rounds.length;
          this.status.textContent = `round ${r.round} (${r.kind}): ${r.pagesSent} pages sent, ${r.remainingPages} left`;
          requestAnimationFrame(() => this.draw());
        },
        (g) => {
          this.lanes = new MigrationLanes(g);
          requestAnimationFrame(this.frame);
        },
        this.harvester.id(),
        this.harvester.wasm(),
      );
      this.finish(s);
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    } finally {
      this.migrating = false;
      probe.migration.done = true;
      this.start.disabled = false;
      this.draw();
    }
  }

  private finish(s: MigrationOutcome): void {
    probe.migration.harvester = s.harvester?.name ?? null;
    probe.migration.mismatchedPages = s.mismatchedPages;
    if (s.error) return this.fail(s.error);
    const h = s.harvester;
    const who = h ? `Harvester ${h.name} (${h.log} mode${h.threads > 0 ? `, ${h.threads} threads of its own` : ''}): ${h.collections} collections, ${h.pagesReported} pages reported${h.ioctlErrors > 0 ? `, ${h.ioctlErrors} ioctl errors (first: ${h.firstIoctlError})` : ''}. ` : '';
    this.status.textContent =
      who +
      `${s.converged ? 'Converged' : 'Did not converge (stop-and-copy forced)'} after ${s.rounds} rounds: ${s.pagesSent} pages sent, ${s.pagesResent} resent; ` +
      `downtime ${s.downtimeMs.toFixed(1)} ms (+${s.parkMs.toFixed(1)} ms to park the vCPUs), ${s.finalPages} pages in the stop-and-copy; ` +
      `destination ${s.verified && s.mismatchedPages === 0 ? 'identical to the source' : `differs on ${s.mismatchedPages} pages`}.`;
    if (!s.ok) this.fail(`the migration is not sound: ${s.mismatchedPages} pages differ at the destination`);
  }

  private fail(message: string): void {
    probe.migration.error = message;
    this.alert.hidden = false;
    this.alert.textContent = `Migration failed: ${message}`;
  }

  private draw(): void {
    const width = Math.max(360, (this.chart.parentElement?.clientWidth ?? 800) - 24);
    const ctx = fitCanvas(this.chart, width, CHART_HEIGHT);
    ctx.fillStyle = '#141923';
    ctx.fillRect(0, 0, width, CHART_HEIGHT);
    const rounds = this.rounds;
    const left = 56;
    const top = 22;
    const plotH = CHART_HEIGHT - 52;
    const maxPages = Math.max(1, ...rounds.map((r) => r.pagesSent));
    const limit = this.downtime.input.valueAsNumber;
    const maxMs = Math.max(limit * 2, ...rounds.map((r) => r.expectedDowntimeMs));
    const slot = (width - left - 10) / Math.max(8, rounds.length);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#94a3b8';
    ctx.fillText(`${maxPages} pages`, 4, 14);
    rounds.forEach((r, i) => {
      const x = left + i * slot + 2;
      const w = Math.max(2, slot - 6);
      const hSent = (plotH * r.pagesSent) / maxPages;
      const hResent = (plotH * r.pagesResent) / maxPages;
      ctx.fillStyle = r.kind === 'stop-and-copy' ? COLORS.final : COLORS.sent;
      ctx.fillRect(x, top + plotH - hSent, w, hSent - hResent);
      ctx.fillStyle = COLORS.resent;
      ctx.fillRect(x, top + plotH - hResent, w, hResent);
      ctx.fillStyle = '#94a3b8';
      ctx.fillText(r.kind === 'bulk' ? 'bulk' : r.kind === 'stop-and-copy' ? 'stop' : String(r.round), x, CHART_HEIGHT - 14);
    });
    const yMs = (ms: number): number => top + plotH - (plotH * Math.min(ms, maxMs)) / maxMs;
    ctx.strokeStyle = COLORS.limit;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(left, yMs(limit));
    ctx.lineTo(width - 10, yMs(limit));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.strokeStyle = COLORS.downtime;
    ctx.lineWidth = 2;
    ctx.beginPath();
    rounds.forEach((r, i) => (i === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, left + i * slot + slot / 2, yMs(r.expectedDowntimeMs)));
    ctx.stroke();
    ctx.lineWidth = 1;
    this.table.replaceChildren(
      el('tr', {}, ...['round', 'kind', 'sent', 'resent', 'dirty after', 'left', 'expected downtime (ms)', 'ms'].map((t) => el('th', { text: t }))),
      ...rounds.map((r) => el('tr', {}, ...[r.round, r.kind, r.pagesSent, r.pagesResent, r.dirtyPages, r.remainingPages, r.expectedDowntimeMs.toFixed(1), r.durationMs.toFixed(0)].map((v) => el('td', { text: String(v) })))),
    );
  }
}
