/**
 * Live charts (uPlot): dirty rate (write faults per second: pages newly dirtied), harvest rate
 * (records collected per second), stall time (ms per second that vCPUs spent stalled on full
 * rings, summed) and false positives (reported pages that had not changed, cumulative). Points
 * are added a few times per second from counters already sampled, never per event, and the
 * plots redrawn one per frame (drawNext).
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Points kept per chart (at POINT_MS apart: the last half minute). */
const POINTS = 120;
export const POINT_MS = 250;

export interface ChartSample {
  readonly t: number;
  readonly faults: number;
  readonly records: number;
  readonly stallNs: number;
  readonly falsePositives: number;
}

const SERIES = [
  { key: 'dirty', label: 'dirty rate (pages/s)', color: '#ef4444' },
  { key: 'harvest', label: 'harvest rate (records/s)', color: '#a855f7' },
  { key: 'stall', label: 'stall time (ms/s)', color: '#f97316' },
  { key: 'fp', label: 'false positives (total)', color: '#3b82f6' },
] as const;

export class LiveCharts {
  private readonly plots: uPlot[] = [];
  private readonly xs: number[] = [];
  private readonly ys: number[][] = SERIES.map(() => []);
  private last: ChartSample | null = null;
  private t0 = -1;
  /** The latest value of each series, for the text readout. */
  readonly latest: number[] = SERIES.map(() => 0);

  constructor(host: HTMLElement, width: number) {
    for (const s of SERIES) {
      const box = document.createElement('figure');
      box.className = 'chart';
      box.setAttribute('aria-label', s.label);
      host.append(box);
      const opts: uPlot.Options = {
        title: s.label,
        width,
        height: 120,
        legend: { show: false },
        scales: { x: { time: false } },
        axes: [
          { stroke: '#94a3b8', grid: { stroke: '#252a35' }, values: (_u, v) => v.map((x) => `${x.toFixed(1)} s`) },
          { stroke: '#94a3b8', grid: { stroke: '#252a35' }, size: 70 },
        ],
        series: [{}, { stroke: s.color, width: 2, fill: `${s.color}22` }],
      };
      this.plots.push(new uPlot(opts, [[], []], box));
    }
  }

  add(s: ChartSample): void {
    const prev = this.last;
    this.last = s;
    if (prev === null) return;
    const dt = (s.t - prev.t) / 1000;
    if (dt <= 0) return;
    const values = [(s.faults - prev.faults) / dt, (s.records - prev.records) / dt, (s.stallNs - prev.stallNs) / 1e6 / dt, s.falsePositives];
    if (this.t0 < 0) this.t0 = prev.t;
    this.xs.push((s.t - this.t0) / 1000);
    for (const [i, v] of values.entries()) {
      this.ys[i]!.push(v);
      this.latest[i] = v;
    }
    if (this.xs.length > POINTS) {
      this.xs.shift();
      for (const y of this.ys) y.shift();
    }
    this.stale = this.plots.length;
  }

  /** Plots whose data changed and are not redrawn yet (the last `stale` of them). */
  private stale = 0;

  /**
   * Redraw one plot whose data changed, if any: called once per animation frame, so that the
   * four redraws of a new point (each repaints its axes and text) fall in four frames, not one.
   */
  drawNext(): void {
    if (this.stale === 0) return;
    const i = this.plots.length - this.stale--;
    this.plots[i]!.setData([this.xs, this.ys[i]!]);
  }

  destroy(): void {
    for (const p of this.plots) p.destroy();
  }
}
