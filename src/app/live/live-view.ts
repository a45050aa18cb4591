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
import { UPLOADED_WASM_ID } from '../wasm-choices.js';
import { buildControls } from './controls.js';
import { heatLegend, laneLegend, ringLegend } from './legend.js';
import { LiveRunClient } from './live-client.js';
import type { LiveConfig } from './live-config.js';
import type { LiveEvents, LiveState } from './live-run.js';
import { Counter } from './live-telemetry.js';
import { VcpuSampler } from './sampler.js';

interface Drawing {
  readonly run: LiveRunClient;
  readonly sampler: VcpuSampler;
  readonly strips: RingStrips | null;
  readonly heatmap: Heatmap;
  readonly charts: LiveCharts;
  lastPoint: number;
}

/**
 * The heatmap and the ring strips read thousands of shared words (a page's stamp is a cache and
 * TLB miss) and repaint large canvases: their work is spread over frames. The heatmap's pass
 * takes HEAT_SLICES frames (a new picture 10 times a second at 60 frames/s); a frame redraws up
 * to RINGS_PER_FRAME strips whose indices moved, in turn (8 rings: each about 15 times a second).
 * Their content changes with each collection (every 50 ms at the default harvest interval), so
 * faster redraws would show little more; and on a machine whose cores the vCPU workers keep
 * busy the page's thread gets its frame out in time only while its work per frame stays a small
 * share of a core (docs/PERFORMANCE.md, "The browser app").
 */
const HEAT_SLICES = 6;
const RINGS_PER_FRAME = 2;

export class LiveView {
  readonly root: HTMLElement;
  private readonly controls;
  private readonly status = el('p', { id: 'live-status', class: 'status', role: 'status', 'aria-live': 'polite', text: 'Ready. Choose a configuration and press Start.' });
  private readonly alert = el('div', { id: 'live-alert', class: 'alert', role: 'alert', hidden: '' });
  private readonly lanes = el('canvas', { id: 'lanes', role: 'img', 'aria-label': 'Thread lanes: one per vCPU, the harvester and the reset' });
  private readonly rings = el('canvas', { id: 'rings', role: 'img', 'aria-label': 'Dirty ring strips, one per vCPU' });
  private readonly heat = el('canvas', { id: 'heatmap', role: 'img', 'aria-label': 'Guest memory heatmap, one cell per page' });
  private readonly heatText = el('p', { id: 'heat-counts', class: 'small' });
  private readonly ringsNote = el('p', { class: 'small', text: 'Start a run to see its rings.' });
  private readonly lanesNote = el('p', { id: 'lanes-note', class: 'small', hidden: '' });
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
        el('div', { class: 'panel wide' }, el('h2', { text: 'Threads' }), this.lanes, laneLegend(), this.lanesNote),
        el('div', { class: 'panel' }, el('h2', { text: 'Guest memory' }), this.heat, heatLegend(), this.heatText),
        el('div', { class: 'panel wide' }, el('h2', { text: 'Dirty rings' }), this.ringsNote, this.rings, ringLegend()),
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
    c.step.addEventListener('click', () => this.control((r) => r.step()));
    c.stop.addEventListener('click', () => this.control((r) => r.stop()));
    c.speed.addEventListener('change', () => this.control((r) => r.setSpeed(Number(c.speed.value))));
    document.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'SELECT') || !this.root.isConnected || this.root.hidden) return;
      if (e.key === 'p') this.togglePause();
      else if (e.key === 'n') this.control((r) => r.step());
    });
  }

  /** A control call to the run's worker; a failure (a stuck or dead worker) is shown, never thrown. */
  private control(call: (run: LiveRunClient) => Promise<void>): void {
    const run = this.drawing?.run;
    if (!run || !this.running) return;
    call(run).catch((e: unknown) => this.showAlert(`The run does not answer: ${e instanceof Error ? e.message : String(e)}`));
  }

  private paused = false;
  private running = false;

  private togglePause(): void {
    if (!this.drawing || !this.running) return;
    this.paused = !this.paused;
    this.control((r) => (this.paused ? r.pause() : r.resume()));
    this.controls.pause.textContent = this.paused ? 'Resume' : 'Pause';
  }

  private showAlert(text: string | null): void {
    this.alert.hidden = text === null;
    this.alert.textContent = text ?? '';
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }

  start(): void {
    void this.startRun();
  }

  private events(): LiveEvents {
    return {
      onState: (s, m, k) => this.onState(s, m, k),
      onIteration: (r) => {
        probe.live.iteration = r.iteration;
        const total = this.drawing?.run.config.iterations ?? 0;
        this.setStatus(`iteration ${r.iteration}/${total}: ${r.guestWrites} writes, ${r.recordsCollected} records, ${r.ringFullExits} ring-full exits, ${r.lostPages} lost`);
      },
      onLost: (message, pages) => {
        probe.live.lostMessage = message;
        for (const p of pages) this.drawing?.heatmap.markLost(p.slot, p.offset);
        this.paused = true;
        this.controls.pause.textContent = 'Resume';
        this.showAlert(`Paused: ${message}`);
      },
      onSummary: (s) => {
        probe.live.summary = { ok: s.ok, lostPages: s.lostPages, iterations: s.iterations, error: s.error, guestWrites: s.guestWrites, elapsedMs: s.elapsedMs };
        this.finishRun();
      },
    };
  }

  private async startRun(): Promise<void> {
    const config = this.controls.read();
    history.replaceState(null, '', this.controls.link.href);
    this.controls.setRunning(true);
    this.showAlert(null);
    probe.live.summary = null;
    probe.live.lostMessage = null;
    let run: LiveRunClient;
    try {
      const wasm = config.harvester === UPLOADED_WASM_ID ? this.controls.wasmFile() : null;
      run = await LiveRunClient.create(
        config,
        this.events(),
        (message) => {
          this.onState('failed', message);
          this.finishRun();
        },
        wasm,
      );
    } catch (e) {
      this.showAlert(`Cannot start: ${e instanceof Error ? e.message : String(e)}`);
      this.controls.setRunning(false);
      return;
    }
    this.beginDrawing(run);
    this.running = true;
    this.paused = false;
    this.control((r) => r.start(Number(this.controls.speed.value)));
  }

  private finishRun(): void {
    this.running = false;
    this.controls.setRunning(false);
    this.drawing?.run.close();
  }

  private beginDrawing(run: LiveRunClient): void {
    this.drawing?.charts.destroy();
    this.chartHost.replaceChildren();
    const { vm, telemetry } = run;
    probe.live.ringMemoryPages = vm.ringMemory === null ? 0 : vm.ringMemory.buffer.byteLength / 65536;
    probe.live.rings = [];
    probe.live.harvesterThreads = run.harvesterThreads;
    this.lanesNote.hidden = run.harvesterThreads === 0;
    // The harvester lane is the run's side: from a collection's request to the last thread's done.
    this.lanesNote.textContent = `The harvester runs on ${run.harvesterThreads} thread${run.harvesterThreads === 1 ? '' : 's'} of its own (Web Workers); its lane shows each collection, from the request to the last thread's done.`;
    const ring = run.config.log === 'ring';
    this.ringsNote.hidden = ring;
    this.rings.hidden = !ring;
    this.ringsNote.textContent = ring ? '' : `No dirty rings: --log ${run.config.log} collects through the dirty bitmap.`;
    this.drawing = {
      run,
      sampler: new VcpuSampler(vm, run.config.vcpus),
      strips: run.config.log === 'ring' ? new RingStrips(vm, run.config.vcpus, run.hasFetchIndex ? (i) => telemetry.fetch[i]! : null) : null,
      heatmap: new Heatmap(run.slots, () => telemetry.reported),
      charts: new LiveCharts(this.chartHost, this.chartWidth()),
      lastPoint: 0,
    };
    // The strips' indices as last drawn (live objects, read by the tests).
    if (this.drawing.strips) probe.live.rings = this.drawing.strips.indices;
  }

  private chartWidth(): number {
    return Math.max(220, Math.floor((this.chartHost.clientWidth || 960) / 2) - 24);
  }

  private onState(state: LiveState, message: string | null, iteration = 0): void {
    probe.live.state = state;
    const run = this.drawing?.run;
    const where = run && iteration > 0 ? ` (iteration ${iteration}/${run.config.iterations})` : '';
    this.setStatus(message ?? `${state}${where}`);
    if (state === 'failed') this.showAlert(`Run failed: ${message ?? 'unknown error'}`);
    if (state === 'paused') this.paused = true;
    this.controls.pause.textContent = this.paused ? 'Resume' : 'Pause';
  }

  private showHeatCounts(h: Heatmap): void {
    const c = h.counts;
    probe.live.heat = { ...c };
    const text = `${h.pageCount} pages: ${c.written} written, ${c.recorded} recorded, ${c.writable} writable, ${c.protected} write-protected, ${c.lost} lost`;
    // A DOM write costs a style and layout pass in its frame: only when the text changed.
    if (text !== this.heatText.textContent) this.heatText.textContent = text;
  }

  private readonly frame = (t: number): void => {
    requestAnimationFrame(this.frame);
    const d = this.drawing;
    if (!d || this.root.hidden) return;
    const t0 = performance.now();
    // The lanes' clock is the epoch: the run's worker stamps its intervals with it.
    const epoch = performance.timeOrigin + t;
    const tel = d.run.telemetry;
    d.sampler.sample(epoch);
    const width = Math.max(320, this.lanes.parentElement!.clientWidth - 24);
    drawLanes(this.lanes, width, { history: d.sampler.history, harvest: tel.activity.harvest, reset: tel.activity.reset, now: epoch });
    // The heatmap's pass over every page is spread over HEAT_SLICES frames; up to
    // RINGS_PER_FRAME strips that changed are redrawn, never in a frame that completes a pass.
    const heatDone = d.heatmap.drawSlice(this.heat, Math.min(384, Math.max(160, this.heat.parentElement!.clientWidth - 24)), tel.counters[Counter.ITERATION]!, t, Math.ceil(d.heatmap.pageCount / HEAT_SLICES));
    if (heatDone) this.showHeatCounts(d.heatmap);
    else d.strips?.draw(this.rings, Math.max(320, this.rings.parentElement!.clientWidth - 24), RINGS_PER_FRAME);
    if (t - d.lastPoint >= POINT_MS) {
      d.lastPoint = t;
      const tot = d.sampler.totals;
      d.charts.add({ t, faults: tot.faults, records: tel.counters[Counter.RECORDS]!, stallNs: tot.stallNs, falsePositives: tel.counters[Counter.FALSE_POSITIVES]! });
    } else d.charts.drawNext();
    probe.live.frames++;
    recordFrame(performance.now() - t0, this.lastFrame === 0 ? 0 : t - this.lastFrame);
    this.lastFrame = t;
  };
}
