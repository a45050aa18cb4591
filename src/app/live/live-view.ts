/**
 * The live run view: controls, status, thread lanes, ring strips, the memory heatmap and the
 * charts. Rendering happens on requestAnimationFrame from shared memory (sampler.ts and the
 * draw modules); the run itself is driven by live-run.ts.
 */
import { probe, recordFrame } from '../app-state.js';
import { el } from '../dom.js';
import { Heatmap } from '../draw/heatmap.js';
import { drawLanes } from '../draw/lanes.js';
import { RingStrips } from '../draw/rings.js';
import { LiveCharts, POINT_MS } from './charts.js';
import { buildControls } from './controls.js';
import { heatLegend, laneLegend, ringLegend } from './legend.js';
import { type LiveConfig, toRunConfig } from './live-config.js';
import { LiveRun, type LiveState } from './live-run.js';
import { VcpuSampler } from './sampler.js';

interface Drawing {
  readonly run: LiveRun;
  readonly sampler: VcpuSampler;
  readonly strips: RingStrips | null;
  readonly heatmap: Heatmap;
  readonly charts: LiveCharts;
  lastPoint: number;
}

export class LiveView {
  readonly root: HTMLElement;
  private readonly controls;
  private readonly status = el('p', { id: 'live-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Ready. Choose a configuration and press Start.' });
  private readonly alert = el('div', { id: 'live-alert', class: 'alert', role: 'alert', hidden: '' });
  private readonly lanes = el('canvas', { id: 'lanes', role: 'img', 'aria-label': 'Thread lanes: one per vCPU, the harvester and the reset' });
  private readonly rings = el('canvas', { id: 'rings', role: 'img', 'aria-label': 'Dirty ring strips, one per vCPU' });
  private readonly heat = el('canvas', { id: 'heatmap', role: 'img', 'aria-label': 'Guest memory heatmap, one cell per page' });
  private readonly heatText = el('p', { id: 'heat-counts', class: 'small' });
  private readonly chartHost = el('div', { id: 'charts', class: 'charts' });
  private drawing: Drawing | null = null;
  private lastFrame = 0;

  constructor(initial: LiveConfig, problems: readonly string[]) {
    this.controls = buildControls(initial, location.pathname);
    this.root = el(
      'section',
      { id: 'view-live', class: 'view', 'aria-label': 'Live run' },
      this.controls.root,
      this.status,
      this.alert,
      el('div', { class: 'grid' },
        el('div', { class: 'panel wide' }, el('h2', { text: 'Threads' }), this.lanes, laneLegend()),
        el('div', { class: 'panel' }, el('h2', { text: 'Guest memory' }), this.heat, heatLegend(), this.heatText),
        el('div', { class: 'panel wide' }, el('h2', { text: 'Dirty rings' }), this.rings, ringLegend()),
        el('div', { class: 'panel wide' }, el('h2', { text: 'Rates' }), this.chartHost),
      ),
    );
    if (problems.length > 0) this.showAlert(`Some link parameters were ignored: ${problems.join('; ')}`);
    this.wire();
    requestAnimationFrame(this.frame);
  }

  private wire(): void {
    const c = this.controls;
    c.start.addEventListener('click', () => this.start());
    c.pause.addEventListener('click', () => this.togglePause());
    c.step.addEventListener('click', () => this.drawing?.run.step());
    c.stop.addEventListener('click', () => this.drawing?.run.stop());
    c.speed.addEventListener('change', () => {
      if (this.drawing) this.drawing.run.speed = Number(c.speed.value);
    });
    document.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'SELECT') || !this.root.isConnected || this.root.hidden) return;
      if (e.key === 'p') this.togglePause();
      else if (e.key === 'n') this.drawing?.run.step();
    });
  }

  private togglePause(): void {
    const run = this.drawing?.run;
    if (!run) return;
    if (run.isPaused) run.resume();
    else run.pause();
    this.controls.pause.textContent = run.isPaused ? 'Resume' : 'Pause';
  }

  private showAlert(text: string | null): void {
    this.alert.hidden = text === null;
    this.alert.textContent = text ?? '';
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }

  start(): void {
    const config = this.controls.read();
    history.replaceState(null, '', this.controls.link.href);
    let run: LiveRun;
    try {
      run = new LiveRun(toRunConfig(config), config.harvester, {
        onState: (s, m) => this.onState(s, m),
        onIteration: (r) => {
          probe.live.iteration = r.iteration;
          this.setStatus(`iteration ${r.iteration}/${run.config.iterations}: ${r.guestWrites} writes, ${r.recordsCollected} records, ${r.ringFullExits} ring-full exits, ${r.lostPages} lost`);
        },
        onLost: (message, pages) => {
          probe.live.lostMessage = message;
          for (const p of pages) this.drawing?.heatmap.markLost(p.slot, p.offset);
          this.controls.pause.textContent = 'Resume';
          this.showAlert(`Paused: ${message}`);
        },
        onSummary: (s) => {
          probe.live.summary = { ok: s.ok, lostPages: s.lostPages, iterations: s.iterations, error: s.error, guestWrites: s.guestWrites, elapsedMs: s.elapsedMs };
        },
      });
    } catch (e) {
      this.showAlert(`Cannot start: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.showAlert(null);
    this.beginDrawing(run);
    run.speed = Number(this.controls.speed.value);
    this.controls.setRunning(true);
    probe.live.summary = null;
    probe.live.lostMessage = null;
    void run.runToEnd().finally(() => this.controls.setRunning(false));
  }

  private beginDrawing(run: LiveRun): void {
    this.drawing?.charts.destroy();
    this.chartHost.replaceChildren();
    const vm = run.run.vm;
    const collector = run.run.collector;
    const fetch = collector.fetchIndex ? (i: number) => collector.fetchIndex!(i) : null;
    this.drawing = {
      run,
      sampler: new VcpuSampler(vm, run.config.vcpus),
      strips: run.config.log === 'ring' ? new RingStrips(vm, run.config.vcpus, fetch) : null,
      heatmap: new Heatmap(run.run.slots, () => run.run.oracle.reportedPages),
      charts: new LiveCharts(this.chartHost, this.chartWidth()),
      lastPoint: 0,
    };
  }

  private chartWidth(): number {
    return Math.max(220, Math.floor((this.chartHost.clientWidth || 960) / 2) - 24);
  }

  private onState(state: LiveState, message: string | null): void {
    probe.live.state = state;
    const run = this.drawing?.run;
    const where = run ? ` (iteration ${run.iteration}/${run.config.iterations})` : '';
    this.setStatus(message ?? `${state}${where}`);
    if (state === 'failed') this.showAlert(`Run failed: ${message ?? 'unknown error'}`);
    if (state !== 'paused') this.controls.pause.textContent = run?.isPaused ? 'Resume' : 'Pause';
  }

  private readonly frame = (t: number): void => {
    requestAnimationFrame(this.frame);
    const d = this.drawing;
    if (!d || this.root.hidden) return;
    const t0 = performance.now();
    d.sampler.sample(t);
    const width = Math.max(320, this.lanes.parentElement!.clientWidth - 24);
    drawLanes(this.lanes, width, { history: d.sampler.history, harvest: d.run.activity.harvest, reset: d.run.activity.reset, now: t });
    d.strips?.draw(this.rings, Math.max(320, this.rings.parentElement!.clientWidth - 24));
    d.heatmap.draw(this.heat, Math.min(384, Math.max(160, this.heat.parentElement!.clientWidth - 24)), d.run.iteration, t);
    const c = d.heatmap.counts;
    probe.live.heat = { ...c };
    this.heatText.textContent = `${d.heatmap.pageCount} pages: ${c.written} written, ${c.recorded} recorded, ${c.writable} writable, ${c.protected} write-protected, ${c.lost} lost`;
    if (t - d.lastPoint >= POINT_MS) {
      d.lastPoint = t;
      const tot = d.sampler.totals;
      d.charts.add({ t, faults: tot.faults, records: d.run.run.collector.stats.records, stallNs: tot.stallNs, falsePositives: d.run.run.findings.falsePositives });
    }
    probe.live.frames++;
    recordFrame(performance.now() - t0, this.lastFrame === 0 ? 0 : t - this.lastFrame);
    this.lastFrame = t;
  };
}
