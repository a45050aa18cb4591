/**
 * What the live view reads from the run's shared memory on every animation frame: each vCPU's
 * state word and mode (the lanes), and the counters behind the charts. Reads only — Atomics
 * loads of words the threads publish — and no allocation per frame after construction.
 */
import { VcpuLayout, VcpuMode, VcpuState } from '../../kernel/vcpu-layout.js';
import type { Vm } from '../../kernel/vm.js';

/** Lane states, in the order the legend shows them. */
export const LaneState = { PARKED: 0, RUNNING: 1, IN_GUEST: 2, STALLED: 3, THROTTLED: 4, HALTED: 5, DEAD: 6 } as const;
export const LANE_STATE_NAMES = ['parked', 'running', 'in guest', 'stalled (ring full)', 'throttled', 'halted', 'dead'] as const;

/** Samples kept per lane (several seconds at 60 frames/s). */
export const LANE_SAMPLES = 1024;

const W = VcpuLayout.words;
const F = VcpuLayout.floats;

/** A vCPU's lane state from its STATE and MODE words (`throttled`: its thread sleeps in dirty-limit). */
export function laneState(state: number, mode: number, throttled: boolean): number {
  switch (state) {
    case VcpuState.PARKED:
    case VcpuState.NEW:
      return LaneState.PARKED;
    case VcpuState.RING_FULL_STALL:
      return LaneState.STALLED;
    case VcpuState.HALTED:
      return LaneState.HALTED;
    case VcpuState.DEAD:
      return LaneState.DEAD;
    default:
      if (throttled) return LaneState.THROTTLED;
      return mode === VcpuMode.IN_GUEST ? LaneState.IN_GUEST : LaneState.RUNNING;
  }
}

export class LaneHistory {
  readonly times = new Float64Array(LANE_SAMPLES);
  readonly states: Uint8Array[];
  count = 0;

  constructor(readonly lanes: number) {
    this.states = Array.from({ length: lanes }, () => new Uint8Array(LANE_SAMPLES));
  }

  push(t: number, read: (lane: number) => number): void {
    const i = this.count % LANE_SAMPLES;
    this.times[i] = t;
    for (let l = 0; l < this.lanes; l++) this.states[l]![i] = read(l);
    this.count++;
  }
}

/** Counters summed over every vCPU, read each frame for the charts. */
export interface VcpuTotals {
  faults: number;
  pushes: number;
  stallNs: number;
  ringFullExits: number;
  instructions: number;
}

export class VcpuSampler {
  private readonly words: Int32Array[];
  private readonly floats: Float64Array[];
  readonly history: LaneHistory;
  readonly totals: VcpuTotals = { faults: 0, pushes: 0, stallNs: 0, ringFullExits: 0, instructions: 0 };
  /** Per-vCPU throttle predicate (the migration view's dirty-limit); none in a plain run. */
  throttled: (vcpu: number) => boolean = () => false;

  constructor(vm: Vm, readonly vcpus: number) {
    this.words = [];
    this.floats = [];
    for (let i = 0; i < vcpus; i++) {
      const b = vm.vcpuBlock(i);
      this.words.push(b.i32);
      this.floats.push(b.f64);
    }
    this.history = new LaneHistory(vcpus);
  }

  private readonly readLane = (i: number): number => {
    const w = this.words[i]!;
    return laneState(Atomics.load(w, W.STATE), Atomics.load(w, W.MODE), this.throttled(i));
  };

  sample(t: number): void {
    this.history.push(t, this.readLane);
    const s = this.totals;
    s.faults = s.pushes = s.stallNs = s.ringFullExits = s.instructions = 0;
    for (const f of this.floats) {
      s.faults += f[F.FAULTS]!;
      s.pushes += f[F.PUSHES]!;
      s.stallNs += f[F.STALL_NS]!;
      s.ringFullExits += f[F.RING_FULL_EXITS]!;
      s.instructions += f[F.INSTRUCTIONS]!;
    }
  }
}
