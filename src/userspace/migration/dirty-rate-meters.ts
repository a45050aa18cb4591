/**
 * The three meters of a dirty-rate measurement (dirty-rate.ts), each started and read at the
 * same moments: the per-vCPU ring counts, the legacy bitmap, and the page sample.
 */
import { GiB } from '../../base/units.js';
import { bitmapWords, popcount } from '../../kernel/dirty-bitmap.js';
import type { Memslot } from '../../kernel/memslots.js';
import type { Vm } from '../../kernel/vm.js';
import { RingCollector } from '../ring-collector.js';
import type { DirtyRateConfig } from './dirty-rate-config.js';
import { PageSampler } from './page-sampler.js';

/** What the meters read over the period. */
export interface MeterReadings {
  /** Ring entries harvested per vCPU in the period, and the collections ring-full stalls forced. */
  readonly ring: { readonly perVcpu: number[]; readonly stallCollections: number } | null;
  /** Bits set in the bitmap GET at the period's end. */
  readonly bitmapPages: number | null;
  readonly sampling: { readonly sampledPages: number; readonly changedPages: number; readonly slotPages: number } | null;
}

/** The period as it really lasted, the guest's own count of page writes in it, and the meters. */
export interface PeriodReading extends MeterReadings {
  readonly periodMs: number;
  readonly guestWrites: number;
}

export class DirtyRateMeters {
  readonly byRing: boolean;
  private readonly byBitmap: boolean;
  private readonly rings: RingCollector | null;
  private readonly perVcpu: Float64Array;
  /** Entries count only between `start` and `end`; harvests outside the period just drain the rings. */
  private counting = false;
  private stallCollections = 0;
  private readonly bitmap: Uint32Array;
  private readonly sampler: PageSampler | null;
  private readonly countEntry = (vcpu: number): void => {
    if (this.counting) this.perVcpu[vcpu]! += 1;
  };
  /** Harvest + reset for vCPUs stalled on a full ring (made once: called at every stall). */
  readonly collectStalled = (): void => {
    this.rings!.collect(this.countEntry);
    this.stallCollections++;
  };

  constructor(
    config: DirtyRateConfig,
    private readonly vm: Vm,
    private readonly slot: Memslot,
  ) {
    this.byRing = config.modes.includes('ring');
    this.byBitmap = config.modes.includes('bitmap');
    this.rings = this.byRing ? new RingCollector(vm, config.vcpus) : null;
    this.perVcpu = new Float64Array(config.vcpus);
    this.bitmap = new Uint32Array(bitmapWords(slot.pageCount));
    const samples = Math.max(1, Math.round((config.memoryBytes / GiB) * config.samplePagesPerGiB));
    this.sampler = config.modes.includes('sampling') ? new PageSampler([new Int32Array(slot.buffers.memory)], samples, config.seed) : null;
  }

  /** The period's start: empty the log (ring, bitmap), hash the sample. */
  start(): void {
    this.rings?.collect(this.countEntry);
    if (this.byBitmap) this.vm.getDirtyLog(this.slot.encodedSlot, this.bitmap);
    this.sampler?.snapshot();
    this.counting = true;
  }

  /** The period's end, in the same order. */
  end(): MeterReadings {
    this.rings?.collect(this.countEntry);
    this.counting = false;
    let bitmapPages: number | null = null;
    if (this.byBitmap) {
      this.vm.getDirtyLog(this.slot.encodedSlot, this.bitmap);
      bitmapPages = 0;
      for (let i = 0; i < this.bitmap.length; i++) bitmapPages += popcount(this.bitmap[i]!);
    }
    const sampler = this.sampler;
    return {
      ring: this.rings ? { perVcpu: Array.from(this.perVcpu), stallCollections: this.stallCollections } : null,
      bitmapPages,
      sampling: sampler ? { sampledPages: sampler.size, changedPages: sampler.changed(), slotPages: this.slot.pageCount } : null,
    };
  }

  /** The first KVM_RESET_DIRTY_RINGS whose count differed from the entries harvested, if any. */
  firstResetMismatch(): unknown {
    return this.rings?.mismatches[0];
  }
}
