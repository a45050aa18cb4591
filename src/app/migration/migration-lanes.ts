/**
 * The migration view's thread lanes: one per source vCPU, sampled on every animation frame from
 * the source VM's shared memory, with dirty-limit's throttle shown: a vCPU whose thread sleeps in
 * its throttle (the SLEEPING word of its VcpuThrottleLayout block) is drawn as throttled.
 */
import { Vm } from '../../kernel/vm.js';
import { VcpuThrottleLayout } from '../../userspace/migration/migration-layout.js';
import { drawLanes } from '../draw/lanes.js';
import { LaneState, VcpuSampler } from '../live/sampler.js';
import type { MigrationGuest } from './migration.worker.js';

const SLEEPING = VcpuThrottleLayout.words.SLEEPING;

export class MigrationLanes {
  private readonly sampler: VcpuSampler;
  /** Lane samples so far, and of them those that found a vCPU throttled (the tests read these). */
  samples = 0;
  throttledSamples = 0;
  /** Whether the migration has a dirty limit (each vCPU a throttle block). */
  readonly limited: boolean;

  constructor(guest: MigrationGuest) {
    const vm = Vm.attach(guest.vm);
    this.sampler = new VcpuSampler(vm, guest.vcpus);
    const words = guest.throttles?.map((b) => new Int32Array(b)) ?? null;
    this.limited = words !== null;
    if (words) this.sampler.throttled = (i) => Atomics.load(words[i]!, SLEEPING) === 1;
  }

  /** Sample the lanes (t: the frame's epoch milliseconds) and draw them. */
  draw(canvas: HTMLCanvasElement, width: number, t: number): void {
    const s = this.sampler;
    s.sample(t);
    const h = s.history;
    const at = (h.count - 1) % h.times.length;
    for (let l = 0; l < h.lanes; l++) {
      this.samples++;
      if (h.states[l]![at] === LaneState.THROTTLED) this.throttledSamples++;
    }
    drawLanes(canvas, width, { history: h, harvest: null, reset: null, now: t });
  }
}
