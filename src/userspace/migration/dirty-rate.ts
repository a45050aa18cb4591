/**
 * Measuring a running guest's dirty rate, like QEMU's calc-dirty-rate, in three ways (any of
 * which can run over the same period, so they can be compared):
 *
 *  - ring: per-vCPU rates from the dirty rings — harvest + reset everything at the start,
 *    count each vCPU's harvested entries until the end (releasing vCPUs that stall on a full
 *    ring, counting what that harvest took). One entry is one page dirtied by that vCPU.
 *  - bitmap: legacy KVM_GET_DIRTY_LOG at the start (discarded) and at the end: the set bits
 *    are the pages dirtied in between.
 *  - sampling: hash a random sample of pages (QEMU: 512 per GiB) at the start and the end;
 *    changed share × memory / period. Needs no dirty logging.
 *
 * ring and bitmap need a VM logging that way, so at most one of them per measurement.
 *
 *   start the guest and let it warm up; start every meter; let the guest run the period while
 *   releasing ring-full stalls; read every meter; park the guest; the rates (pure).
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { isKvmError } from '../../abi/errno.js';
import { MS_PER_S, MiB } from '../../base/units.js';
import { now } from '../../base/clock.js';
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import type { WorkloadConfig } from '../../guest/workloads.js';
import type { Memslot } from '../../kernel/memslots.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, buildGuestVm, describeFailure, round3 } from '../guest-fleet.js';
import { USERSPACE_WAIT_SLICE_MS } from '../thread-timing.js';
import type { SpawnVcpuWorker } from '../vcpu-worker-api.js';
import type { DirtyRateConfig, DirtyRateMode } from './dirty-rate-config.js';
import { validateDirtyRateConfig } from './dirty-rate-config.js';
import { DirtyRateMeters, type PeriodReading } from './dirty-rate-meters.js';
import { MIGRATION_DEFAULTS } from './migration-config.js';

export {
  DEFAULT_SAMPLE_PAGES_PER_GIB,
  DIRTY_RATE_DEFAULTS,
  DIRTY_RATE_MODES,
  type DirtyRateConfig,
  type DirtyRateMode,
  MAX_PERIOD_MS,
  MIN_PERIOD_MS,
  validateDirtyRateConfig,
} from './dirty-rate-config.js';


export interface DirtyRateResult {
  ok: boolean;
  seed: number;
  modes: DirtyRateMode[];
  vcpus: number;
  memoryBytes: number;
  /** The period as it really lasted. */
  periodMs: number;
  /** The guest's own count: page writes in the period (a burst counts each page). */
  guestWrites: number;
  guestTargetMiBs: number;
  ring: { dirtyRateMiBs: number; pages: number; perVcpuMiBs: number[]; stallCollections: number } | null;
  bitmap: { dirtyRateMiBs: number; pages: number } | null;
  sampling: { dirtyRateMiBs: number; sampledPages: number; changedPages: number; samplePagesPerGiB: number } | null;
  error: string | null;
}

export interface DirtyRateHooks {
  readonly spawn: SpawnVcpuWorker;
  readonly onStart?: (config: DirtyRateConfig) => void;
}

/** How the measurement ended: the period's readings (null if it failed first), an error, the checks. */
export interface DirtyRateOutcome {
  readonly period: PeriodReading | null;
  readonly error: string | null;
  readonly kernelWarnings: number;
  /** The first KVM_RESET_DIRTY_RINGS count mismatch of the ring meter, if any. */
  readonly resetMismatch: unknown;
}

/** The result from the period's readings (pure). */
export function dirtyRateResult(config: DirtyRateConfig, o: DirtyRateOutcome): DirtyRateResult {
  const p = o.period;
  const seconds = p === null ? 0 : p.periodMs / MS_PER_S;
  const rate = (pages: number): number => round3((pages * PAGE_SIZE) / MiB / seconds);
  const ringPages = p?.ring ? p.ring.perVcpu.reduce((a, b) => a + b, 0) : 0;
  const mismatchError = o.error === null && o.resetMismatch !== undefined;
  return {
    ok: o.error === null && o.kernelWarnings === 0 && o.resetMismatch === undefined,
    seed: config.seed,
    modes: [...config.modes],
    vcpus: config.vcpus,
    memoryBytes: config.memoryBytes,
    periodMs: p === null ? 0 : round3(p.periodMs),
    guestWrites: p?.guestWrites ?? 0,
    guestTargetMiBs: config.dirtyRateMiBs * config.vcpus,
    ring: p?.ring ? { dirtyRateMiBs: rate(ringPages), pages: ringPages, perVcpuMiBs: p.ring.perVcpu.map(rate), stallCollections: p.ring.stallCollections } : null,
    bitmap: p !== null && p.bitmapPages !== null ? { dirtyRateMiBs: rate(p.bitmapPages), pages: p.bitmapPages } : null,
    sampling: p?.sampling
      ? {
          dirtyRateMiBs: rate((p.sampling.changedPages / p.sampling.sampledPages) * p.sampling.slotPages),
          sampledPages: p.sampling.sampledPages,
          changedPages: p.sampling.changedPages,
          samplePagesPerGiB: config.samplePagesPerGiB,
        }
      : null,
    error: mismatchError ? `KVM_RESET_DIRTY_RINGS count mismatch: ${JSON.stringify(o.resetMismatch)}` : o.error,
  };
}

/** The measured guest: one memslot, its vCPU threads, and the loop that keeps them running. */
class MeasuredGuest {
  constructor(
    readonly slot: Memslot,
    readonly fleet: GuestFleet,
    private readonly meters: DirtyRateMeters,
  ) {}

  async start(config: DirtyRateConfig): Promise<void> {
    const { slot } = this;
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: [{ baseGfn: slot.baseGfn, pageCount: config.workingSetBytes > 0 ? config.workingSetBytes / PAGE_SIZE : slot.pageCount }],
      burstPages: MIGRATION_DEFAULTS.burstPages,
      burstPercent: MIGRATION_DEFAULTS.burstPercent,
      dirtyPagesPerSecond: (config.dirtyRateMiBs * MiB) / PAGE_SIZE,
    };
    Atomics.store(this.fleet.globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
    await this.fleet.start({ workload });
    this.fleet.control.resumeAll();
  }

  /** Let the guest run `ms`, releasing vCPUs that stall on a full ring (the ring meter counts what is harvested). */
  async runFor(ms: number): Promise<void> {
    const { control } = this.fleet;
    const end = now() + ms;
    for (;;) {
      const bell = control.doorbell();
      const dead = control.anyDeadThread();
      if (dead !== null) throw new Error(`${dead} thread died`);
      if (this.meters.byRing) control.releaseRingFullStalls(this.meters.collectStalled);
      const left = end - now();
      if (left <= 0) return;
      await control.waitDoorbell(bell, Math.min(left, USERSPACE_WAIT_SLICE_MS));
    }
  }

  /** The period: start every meter, let the guest run, read every meter. */
  async measure(periodMs: number): Promise<PeriodReading> {
    this.meters.start();
    const stores0 = this.fleet.sumVcpu('STORES');
    const t0 = now();
    await this.runFor(periodMs);
    const readings = this.meters.end();
    const t1 = now();
    return { ...readings, periodMs: t1 - t0, guestWrites: this.fleet.sumVcpu('STORES') - stores0 };
  }

  async park(): Promise<void> {
    this.fleet.control.pauseAll();
    await this.fleet.control.waitAllParked(CONTROL_TIMEOUT_MS);
  }
}

export async function measureDirtyRate(input: Partial<DirtyRateConfig>, hooks: DirtyRateHooks): Promise<DirtyRateResult> {
  const config = validateDirtyRateConfig(input);
  hooks.onStart?.(config);
  const byRing = config.modes.includes('ring');
  const byBitmap = config.modes.includes('bitmap');
  // One memslot; sampling alone needs no logging (the guest then never faults on a protected page).
  const { vm, slots } = buildGuestVm(
    { log: byRing ? 'ring' : 'bitmap', ringEntries: config.ringEntries, ringWithBitmap: false, initiallySet: false, mutants: 0, memoryBytes: config.memoryBytes, memslots: 1, vcpus: config.vcpus },
    byRing || byBitmap,
  );
  const meters = new DirtyRateMeters(config, vm, slots[0]!);
  const guest = new MeasuredGuest(slots[0]!, new GuestFleet(vm, config.vcpus, 0, hooks.spawn), meters);
  let period: PeriodReading | null = null;
  let error: string | null = null;
  try {
    await guest.start(config);
    await guest.runFor(config.warmupMs);
    period = await guest.measure(config.periodMs);
    await guest.park();
  } catch (e) {
    error = isKvmError(e) ? e.message : describeFailure(e, guest.fleet);
  } finally {
    const err = await guest.fleet.shutdown();
    if (err !== null && error === null) error = err;
  }
  return dirtyRateResult(config, { period, error, kernelWarnings: vm.warnings, resetMismatch: meters.firstResetMismatch() });
}
