/**
 * Thread lanes, one per vCPU, then the harvester and the reset (userspace): the last few
 * seconds, newest at the right, one colour per state (palette.ts), like a tracing UI's
 * one-track-per-thread timeline.
 */
import type { IntervalRing } from '../live/activity-log.js';
import { LANE_SAMPLES, type LaneHistory } from '../live/sampler.js';
import { fitCanvas } from './canvas.js';
import { LANE_COLORS } from './palette.js';

const LANE_COLOR_BY_STATE = [
  LANE_COLORS.parked,
  LANE_COLORS.running,
  LANE_COLORS.inGuest,
  LANE_COLORS.stalled,
  LANE_COLORS.throttled,
  LANE_COLORS.halted,
  LANE_COLORS.dead,
];

export const LANE_HEIGHT = 16;
const LANE_GAP = 4;
const LABEL_WIDTH = 84;
/** The visible window of the timeline. */
export const LANE_WINDOW_MS = 4000;

export interface LaneInput {
  readonly history: LaneHistory;
  /** Userspace's lanes; null where userspace's activity is not recorded (the migration view). */
  readonly harvest: IntervalRing | null;
  readonly reset: IntervalRing | null;
  readonly now: number;
}

export function lanesHeight(vcpus: number, userspaceLanes = 2): number {
  return (vcpus + userspaceLanes) * (LANE_HEIGHT + LANE_GAP) + LANE_GAP;
}

export function drawLanes(canvas: HTMLCanvasElement, width: number, input: LaneInput): void {
  const { history, harvest, reset } = input;
  const height = lanesHeight(history.lanes, (harvest ? 1 : 0) + (reset ? 1 : 0));
  const ctx = fitCanvas(canvas, width, height);
  ctx.fillStyle = '#0f1218';
  ctx.fillRect(0, 0, width, height);
  const plotW = width - LABEL_WIDTH;
  const t0 = input.now - LANE_WINDOW_MS;
  const x = (t: number): number => LABEL_WIDTH + Math.max(0, Math.min(plotW, ((t - t0) / LANE_WINDOW_MS) * plotW));
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  for (let l = 0; l < history.lanes; l++) {
    const y = LANE_GAP + l * (LANE_HEIGHT + LANE_GAP);
    label(ctx, `vCPU ${l}`, y);
    drawSampledLane(ctx, history, l, y, input.now, x);
  }
  let y = LANE_GAP + history.lanes * (LANE_HEIGHT + LANE_GAP);
  if (harvest) {
    label(ctx, 'harvester', y);
    drawIntervals(ctx, harvest, y, t0, x, LANE_COLORS.harvest, LABEL_WIDTH, plotW);
    y += LANE_HEIGHT + LANE_GAP;
  }
  if (reset) {
    label(ctx, 'reset', y);
    drawIntervals(ctx, reset, y, t0, x, LANE_COLORS.reset, LABEL_WIDTH, plotW);
  }
}

function label(ctx: CanvasRenderingContext2D, text: string, y: number): void {
  ctx.fillStyle = '#cbd5e1';
  ctx.fillText(text, 6, y + LANE_HEIGHT / 2);
}

/** One rectangle per run of equal samples (a lane holds up to LANE_SAMPLES of them). */
function drawSampledLane(ctx: CanvasRenderingContext2D, h: LaneHistory, lane: number, y: number, now: number, x: (t: number) => number): void {
  const kept = Math.min(h.count, LANE_SAMPLES);
  const states = h.states[lane]!;
  let right = x(now);
  let state = -1;
  let left = right;
  for (let k = 1; k <= kept; k++) {
    const i = (h.count - k) % LANE_SAMPLES;
    const s = states[i]!;
    const at = x(h.times[i]!);
    if (s !== state) {
      if (state >= 0) fillLane(ctx, state, left, right, y);
      state = s;
      right = left;
    }
    left = at;
    if (at <= LABEL_WIDTH) break;
  }
  if (state >= 0) fillLane(ctx, state, left, right, y);
}

/** At least a pixel wide, inside the plot: the newest sample sits at the right edge, where it would be drawn past the canvas. */
function fillLane(ctx: CanvasRenderingContext2D, state: number, left: number, right: number, y: number): void {
  ctx.fillStyle = LANE_COLOR_BY_STATE[state] ?? LANE_COLORS.dead;
  const l = Math.min(left, right - 1);
  ctx.fillRect(l, y, right - l, LANE_HEIGHT);
}

function drawIntervals(
  ctx: CanvasRenderingContext2D,
  ring: IntervalRing,
  y: number,
  t0: number,
  x: (t: number) => number,
  color: string,
  left: number,
  plotW: number,
): void {
  ctx.fillStyle = LANE_COLORS.idle;
  ctx.fillRect(left, y, plotW, LANE_HEIGHT);
  ctx.fillStyle = color;
  // Intervals closer than a pixel are drawn as one rectangle.
  let a = -1;
  let b = -1;
  ring.forEachNewest((start, end) => {
    if (end < t0) return false;
    const xs = x(start);
    const xe = Math.max(xs + 1, x(end));
    if (a >= 0 && xe >= a - 1) {
      a = Math.min(a, xs);
    } else {
      if (a >= 0) ctx.fillRect(a, y, b - a, LANE_HEIGHT);
      a = xs;
      b = xe;
    }
    return true;
  });
  if (a >= 0) ctx.fillRect(a, y, b - a, LANE_HEIGHT);
}
