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
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_MEM_LOG_DIRTY_PAGES, PAGE_SIZE, encodeSlot } from '../../abi/constants.js';
import { isKvmError } from '../../abi/errno.js';
import { GuestGlobalsLayout, SharedBlock, VcpuLayout, VcpuState } from '../../abi/layout.js';
import { WORKLOAD_KINDS, type WorkloadConfig, type WorkloadKind } from '../../guest/workloads.js';
import { popcount } from '../../kernel/dirty-bitmap.js';
import type { Memslot } from '../../kernel/memslots.js';
import { now } from '../../kernel/sync.js';
import { Vm } from '../../kernel/vm.js';
import { ConfigError, MAX_RUN_VCPUS, MAX_SLOT_BYTES, randomSeed, validateRingEntries } from '../../harness/run-config.js';
import { withTimeout } from '../../platform/async-wait.js';
import { RingCollector } from '../ring-collector.js';
import { VcpuControlPlane } from '../vcpu-control.js';
import type { SpawnVcpuWorker, VcpuWorkerHandle } from '../vcpu-worker-api.js';
import { PageSampler } from './page-sampler.js';

export const DIRTY_RATE_MODES = ['ring', 'bitmap', 'sampling'] as const;
export type DirtyRateMode = (typeof DIRTY_RATE_MODES)[number];

/** QEMU's calc-dirty-rate limits on the period, and its default sample density. */
export const MIN_PERIOD_MS = 50;
export const MAX_PERIOD_MS = 60_000;
export const DEFAULT_SAMPLE_PAGES_PER_GIB = 512;

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
  memoryBytes: 256 * 2 ** 20,
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

const CONTROL_TIMEOUT_MS = 15_000;
const FIRST_SLOT_GFN = (1 << 30) / PAGE_SIZE;
const MiB = 2 ** 20;

function int(param: string, value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(param, value, 'EINVAL', `${what} must be an integer`);
  if (value < min || value > max) throw new ConfigError(param, value, 'EINVAL', `${what} must be between ${min} and ${max}`);
  return value;
}

export function validateDirtyRateConfig(input: Partial<DirtyRateConfig>): DirtyRateConfig {
  const c = { ...DIRTY_RATE_DEFAULTS, seed: input.seed ?? randomSeed() };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
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
  const vcpus = int('--vcpus', c.vcpus, 1, MAX_RUN_VCPUS, 'vCPU count');
  if (!Number.isSafeInteger(c.memoryBytes) || c.memoryBytes <= 0 || c.memoryBytes % PAGE_SIZE !== 0 || c.memoryBytes > MAX_SLOT_BYTES) {
    throw new ConfigError('--memory', c.memoryBytes, 'EINVAL', `memory must be whole pages, at most ${MAX_SLOT_BYTES / 2 ** 30} GiB`);
  }
  const ringEntries = validateRingEntries(c.ringEntries);
  const dirtyRateMiBs = int('--dirty-rate-mibs', c.dirtyRateMiBs, 0, 1_000_000, 'guest dirty rate (MiB/s per vCPU)');
  if (!Number.isSafeInteger(c.workingSetBytes) || c.workingSetBytes < 0 || c.workingSetBytes % PAGE_SIZE !== 0 || c.workingSetBytes > c.memoryBytes) {
    throw new ConfigError('--working-set', c.workingSetBytes, 'EINVAL', 'working set must be whole pages, at most --memory');
  }
  if (!(WORKLOAD_KINDS as readonly string[]).includes(c.workload)) {
    throw new ConfigError('--workload', c.workload, 'EINVAL', `workload must be one of ${WORKLOAD_KINDS.join(', ')}`);
  }
  // QEMU accepts 128..1048576 sampled pages per GiB.
  const samplePagesPerGiB = int('--sample-pages-per-gib', c.samplePagesPerGiB, 128, 1_048_576, 'sample density');
  const warmupMs = int('--warmup-ms', c.warmupMs, 0, 3_600_000, 'warm-up');
  const seed = int('--seed', c.seed, 0, 0xffffffff, 'seed');
  return { modes, periodMs, vcpus, memoryBytes: c.memoryBytes, ringEntries, dirtyRateMiBs, workingSetBytes: c.workingSetBytes, workload: c.workload, samplePagesPerGiB, warmupMs, seed };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export async function measureDirtyRate(input: Partial<DirtyRateConfig>, hooks: DirtyRateHooks): Promise<DirtyRateResult> {
  const config = validateDirtyRateConfig(input);
  hooks.onStart?.(config);
  const byRing = config.modes.includes('ring');
  const byBitmap = config.modes.includes('bitmap');
  const vm = Vm.create();
  if (byRing) vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, config.ringEntries * 16);
  const pageCount = config.memoryBytes / PAGE_SIZE;
  vm.setUserMemoryRegion({
    slot: encodeSlot(0, 1),
    // Sampling alone needs no logging: the guest then never faults on a protected page.
    flags: byRing || byBitmap ? KVM_MEM_LOG_DIRTY_PAGES : 0,
    guestPhysAddr: FIRST_SLOT_GFN * PAGE_SIZE,
    memorySize: config.memoryBytes,
  });
  const slot: Memslot = vm.memslots.findById(0, 1)!;
  for (let i = 0; i < config.vcpus; i++) vm.createVcpu();
  const globals = new SharedBlock(GuestGlobalsLayout);
  Atomics.store(globals.i32, GuestGlobalsLayout.words.ITERATION, 1);
  const control = new VcpuControlPlane(vm, config.vcpus);
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
  const storesNow = (): number => {
    let s = 0;
    for (let i = 0; i < config.vcpus; i++) s += vm.vcpuBlock(i).f64[VcpuLayout.floats.STORES]!;
    return s;
  };

  const workers: VcpuWorkerHandle[] = [];
  try {
    const workload: WorkloadConfig = {
      kind: config.workload,
      seed: config.seed,
      ranges: [{ baseGfn: slot.baseGfn, pageCount: config.workingSetBytes > 0 ? config.workingSetBytes / PAGE_SIZE : pageCount }],
      burstPages: 8,
      burstPercent: 5,
      dirtyPagesPerSecond: (config.dirtyRateMiBs * MiB) / PAGE_SIZE,
    };
    for (let i = 0; i < config.vcpus; i++) workers.push(hooks.spawn(i));
    await Promise.all(
      workers.map((w, i) =>
        withTimeout(
          w.api.start({ vm: vm.buffers(), vcpuIndex: i, vcpuCount: config.vcpus, globals: globals.buffer, workload, preemptAfterMs: 20 }),
          CONTROL_TIMEOUT_MS,
          `starting vCPU ${i}`,
        ),
      ),
    );
    await control.waitAllParked(CONTROL_TIMEOUT_MS);
    control.resumeAll();
    await runFor(config.warmupMs);

    // Start of the period: empty the log (ring, bitmap), hash the sample.
    if (rings) rings.collect(countEntry);
    if (byBitmap) vm.getDirtyLog(slot.encodedSlot, bitmapWords);
    sampler?.snapshot();
    const stores0 = storesNow();
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
    result.guestWrites = storesNow() - stores0;
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
    result.error = isKvmError(e) ? e.message : e instanceof Error ? e.message : String(e);
  } finally {
    control.terminateAll();
    await Promise.all(
      workers.map(async (w, i) => {
        try {
          const err = await withTimeout(w.api.join(), 5000, `joining worker ${i}`);
          if (err && !result.error) result.error = `worker ${i}: ${err}`;
        } catch (e) {
          if (!result.error) result.error = e instanceof Error ? e.message : String(e);
        } finally {
          await w.terminate();
        }
      }),
    );
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
      if (rings) {
        let stalled = false;
        for (let i = 0; i < config.vcpus; i++) if (control.state(i) === VcpuState.RING_FULL_STALL) stalled = true;
        if (stalled) {
          rings.collect(countEntry);
          stallCollections++;
          for (let i = 0; i < config.vcpus; i++) if (control.state(i) === VcpuState.RING_FULL_STALL) control.wakeStalled(i);
        }
      }
      const left = end - now();
      if (left <= 0) return;
      await control.waitDoorbell(bell, Math.min(left, 20));
    }
  }
}
