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
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { isKvmError } from '../../abi/errno.js';
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import type { WorkloadConfig, WorkloadKind } from '../../guest/workloads.js';
import { popcount } from '../../kernel/dirty-bitmap.js';
import { now } from '../../base/clock.js';
import { ConfigError } from '../../base/config-error.js';
import { GiB, MAX_SEED, MiB, int, randomSeed, stripUndefined } from '../../base/config-values.js';
import { MAX_GUEST_VCPUS, MAX_SLOT_BYTES, validateRingEntries, validateWorkload } from '../guest-shape.js';
import { validateDirtyRateMiBs, validateWarmupMs, validateWorkingSet } from './pacing-config.js';
import { CONTROL_TIMEOUT_MS, GuestFleet, buildGuestVm, describeFailure, round3 } from '../guest-fleet.js';
import { RingCollector } from '../ring-collector.js';
import type { SpawnVcpuWorker } from '../vcpu-worker-api.js';
import { PageSampler } from './page-sampler.js';

export const DIRTY_RATE_MODES = ['ring', 'bitmap', 'sampling'] as const;
export type DirtyRateMode = (typeof DIRTY_RATE_MODES)[number];

/** QEMU's calc-dirty-rate limits on the period, and its default sample density. */
export const MIN_PERIOD_MS = 50;
export const MAX_PERIOD_MS = 60_000;
export const DEFAULT_SAMPLE_PAGES_PER_GIB = 512;
/** QEMU accepts 128..1048576 sampled pages per GiB. */
const MIN_SAMPLE_PAGES_PER_GIB = 128;
const MAX_SAMPLE_PAGES_PER_GIB = 1_048_576;

export interface DirtyRateConfig {
  readonly modes: readonly DirtyRateMode[];
  readonly periodMs: number;
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly ringEntries: number;
  /** Guest pacing per vCPU in MiB/s of page writes (0: unpaced). */
  readonly dirtyRateMiBs: number;
  readonly workingSetBytes: number;
  readonly workload: WorkloadKind;
  readonly samplePagesPerGiB: number;
  /** Guest run time before the period starts. */
  readonly warmupMs: number;
  readonly seed: number;
}

export const DIRTY_RATE_DEFAULTS: Omit<DirtyRateConfig, 'seed'> = {
  modes: ['sampling'],
  periodMs: 1000,
  vcpus: 4,
  memoryBytes: 256 * MiB,
  ringEntries: 4096,
  dirtyRateMiBs: 8,
  workingSetBytes: 0,
  workload: 'random',
  samplePagesPerGiB: DEFAULT_SAMPLE_PAGES_PER_GIB,
  warmupMs: 200,
};

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

export function validateDirtyRateConfig(input: Partial<DirtyRateConfig>): DirtyRateConfig {
  const c: DirtyRateConfig = { ...DIRTY_RATE_DEFAULTS, seed: input.seed ?? randomSeed(), ...stripUndefined(input) };
  const modes = [...new Set(c.modes)];
  if (modes.length === 0 || modes.some((m) => !(DIRTY_RATE_MODES as readonly string[]).includes(m))) {
    throw new ConfigError('--mode', modes.join(','), 'EINVAL', `mode must be one or more of ${DIRTY_RATE_MODES.join(', ')}`);
  }
  if (modes.includes('ring') && modes.includes('bitmap')) {
    // A VM with a dirty ring has no bitmaps: GET would fail with ENXIO.
    throw new ConfigError('--mode', modes.join(','), 'ENXIO', 'ring and bitmap cannot be measured on one VM');
  }
  if (input.ringEntries !== undefined && !modes.includes('ring')) {
    throw new ConfigError('--ring-entries', input.ringEntries, 'EINVAL', 'a ring size needs --mode ring');
  }
  const periodMs = int('--period-ms', c.periodMs, MIN_PERIOD_MS, MAX_PERIOD_MS, 'period');
  const vcpus = int('--vcpus', c.vcpus, 1, MAX_GUEST_VCPUS, 'vCPU count');
  if (!Number.isSafeInteger(c.memoryBytes) || c.memoryBytes <= 0 || c.memoryBytes % PAGE_SIZE !== 0 || c.memoryBytes > MAX_SLOT_BYTES) {
    // One memslot holds all of the guest's memory.
    throw new ConfigError('--memory', c.memoryBytes, 'EINVAL', `memory must be whole pages, at most ${MAX_SLOT_BYTES / GiB} GiB`);
  }
  const ringEntries = validateRingEntries(c.ringEntries);
  const dirtyRateMiBs = validateDirtyRateMiBs(c.dirtyRateMiBs);
  const workingSetBytes = validateWorkingSet(c.workingSetBytes, c.memoryBytes);
  const workload = validateWorkload(c.workload);
  const samplePagesPerGiB = int('--sample-pages-per-gib', c.samplePagesPerGiB, MIN_SAMPLE_PAGES_PER_GIB, MAX_SAMPLE_PAGES_PER_GIB, 'sample density');
  const warmupMs = validateWarmupMs(c.warmupMs);
  const seed = int('--seed', c.seed, 0, MAX_SEED, 'seed');
  return { modes, periodMs, vcpus, memoryBytes: c.memoryBytes, ringEntries, dirtyRateMiBs, workingSetBytes, workload, samplePagesPerGiB, warmupMs, seed };
}

export async function measureDirtyRate(input: Partial<DirtyRateConfig>, hooks: DirtyRateHooks): Promise<DirtyRateResult> {
  const config = validateDirtyRateConfig(input);
  hooks.onStart?.(config);
  const byRing = config.modes.includes('ring');
  const byBitmap = config.modes.includes('bitmap');
  // One memslot; sampling alone needs no logging (the guest then never faults on a protected page).
  const { vm, slots } = buildGuestVm(
    {
      log: byRing ? 'ring' : 'bitmap',
      ringEntries: config.ringEntries,
      ringWithBitmap: false,
      initiallySet: false,
      mutants: 0,
      memoryBytes: config.memoryBytes,
      memslots: 1,
      vcpus: config.vcpus,
    },
    byRing || byBitmap,
  );
  const slot = slots[0]!;
  const pageCount = slot.pageCount;
  const fleet = new GuestFleet(vm, config.vcpus, 0, hooks.spawn);
  const control = fleet.control;
  Atomics.store(fleet.globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
  const result: DirtyRateResult = {
    ok: false,
    seed: config.seed,
    modes: [...config.modes],
    vcpus: config.vcpus,
    memoryBytes: config.memoryBytes,
    periodMs: 0,
    guestWrites: 0,
    guestTargetMiBs: config.dirtyRateMiBs * config.vcpus,
    ring: null,
    bitmap: null,
    sampling: null,
    error: null,
  };
  const perVcpu = new Float64Array(config.vcpus);
  let counting = false;
  const rings = byRing ? new RingCollector(vm, config.vcpus) : null;
  const countEntry = (vcpu: number): void => {
    if (counting) perVcpu[vcpu]! += 1;
  };
  let stallCollections = 0;
  const bitmapWords = new Uint32Array(Math.ceil(pageCount / 64) * 2);
  const sampler = config.modes.includes('sampling')
    ? new PageSampler([new Int32Array(slot.buffers.memory)], Math.max(1, Math.round((config.memoryBytes / 2 ** 30) * config.samplePagesPerGiB)), config.seed)
    : null;
  // Made once: runFor calls it at every ring-full stall.
  const collectStalled = (): void => {
    rings!.collect(countEntry);
    stallCollections++;
  };

  try {
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: [{ baseGfn: slot.baseGfn, pageCount: config.workingSetBytes > 0 ? config.workingSetBytes / PAGE_SIZE : pageCount }],
      burstPages: 8,
      burstPercent: 5,
      dirtyPagesPerSecond: (config.dirtyRateMiBs * MiB) / PAGE_SIZE,
    };
    await fleet.start({ workload });
    control.resumeAll();
    await runFor(config.warmupMs);

    // Start of the period: empty the log (ring, bitmap), hash the sample.
    if (rings) rings.collect(countEntry);
    if (byBitmap) vm.getDirtyLog(slot.encodedSlot, bitmapWords);
    sampler?.snapshot();
    const stores0 = fleet.sumVcpu('STORES');
    counting = true;
    const t0 = now();
    await runFor(config.periodMs);
    // End of the period, in the same order.
    if (rings) rings.collect(countEntry);
    counting = false;
    let bitmapPages = 0;
    if (byBitmap) {
      vm.getDirtyLog(slot.encodedSlot, bitmapWords);
      for (let i = 0; i < bitmapWords.length; i++) bitmapPages += popcount(bitmapWords[i]!);
    }
    const changed = sampler ? sampler.changed() : 0;
    const t1 = now();
    const seconds = (t1 - t0) / 1000;
    result.periodMs = round3(t1 - t0);
    result.guestWrites = fleet.sumVcpu('STORES') - stores0;
    const rate = (pages: number): number => round3((pages * PAGE_SIZE) / MiB / seconds);
    if (rings) {
      const pages = perVcpu.reduce((a, b) => a + b, 0);
      result.ring = { dirtyRateMiBs: rate(pages), pages, perVcpuMiBs: Array.from(perVcpu, rate), stallCollections };
    }
    if (byBitmap) result.bitmap = { dirtyRateMiBs: rate(bitmapPages), pages: bitmapPages };
    if (sampler) {
      result.sampling = {
        dirtyRateMiBs: rate((changed / sampler.size) * pageCount),
        sampledPages: sampler.size,
        changedPages: changed,
        samplePagesPerGiB: config.samplePagesPerGiB,
      };
    }
    control.pauseAll();
    await control.waitAllParked(CONTROL_TIMEOUT_MS);
  } catch (e) {
    result.error = isKvmError(e) ? e.message : describeFailure(e, fleet);
  } finally {
    const err = await fleet.shutdown();
    if (err !== null && result.error === null) result.error = err;
  }
  result.ok = result.error === null && vm.warnings === 0 && (rings === null || rings.mismatches.length === 0);
  if (rings && rings.mismatches.length > 0 && !result.error) result.error = `KVM_RESET_DIRTY_RINGS count mismatch: ${JSON.stringify(rings.mismatches[0])}`;
  return result;

  /** Let the guest run `ms`, releasing vCPUs that stall on a full ring (counting what is harvested). */
  async function runFor(ms: number): Promise<void> {
    const end = now() + ms;
    for (;;) {
      const bell = control.doorbell();
      const dead = control.anyDeadThread();
      if (dead !== null) throw new Error(`${dead} thread died`);
      if (rings) control.releaseRingFullStalls(collectStalled);
      const left = end - now();
      if (left <= 0) return;
      await control.waitDoorbell(bell, Math.min(left, 20));
    }
  }
}
