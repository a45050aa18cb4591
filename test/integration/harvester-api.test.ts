/**
 * The library API with a user's harvester: run() and migrate() with a module or an in-process
 * definition, stress() in both modes returning the outcome table and the failures, the
 * "survives N schedules" check and its Vitest helper, and bad input as ConfigErrors.
 */
import { describe, expect, it } from 'vitest';
import { HarvesterCheckFailed, KVM_DIRTY_GFN_F_DIRTY, checkHarvester, defineHarvester, migrate, run, stress } from 'dirtyring';
import { harvesterTest } from 'dirtyring/vitest';
import { testSeed, withWatchdog } from '../helpers/watchdog.js';

const example = (name: string): URL => new URL(`../../examples/harvesters/${name}.ts`, import.meta.url);
const WATCHDOG_MS = 120_000;
const seed = testSeed(7);

/** A harvester written in the test itself: harvest every ring, reset, then report. */
const inline = defineHarvester({
  name: 'inline-reaper',
  log: 'ring',
  create(kvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch = rings.map((r) => r.startIndex);
    const held: number[] = [];
    return {
      collect() {
        held.length = 0;
        rings.forEach((ring, v) => {
          let i = fetch[v]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            held.push(ring.readSlot(i), ring.readOffset(i));
            ring.storeResetRelease(i);
            i = (i + 1) >>> 0;
          }
          fetch[v] = i;
        });
        if (held.length > 0) kvm.resetDirtyRings();
        for (let k = 0; k < held.length; k += 2) kvm.report(held[k]!, held[k + 1]!);
      },
    };
  },
});

describe('run() and migrate() with a harvester', () => {
  it('a module (TypeScript, no build step) and an in-process definition both lose nothing', async () => {
    await withWatchdog(seed, WATCHDOG_MS, 'run()', async () => {
      for (const harvester of [example('qemu-reaper'), inline]) {
        const r = await run({ harvester, iterations: 2, seed });
        expect(r.ok, r.error ?? '').toBe(true);
        expect(r.harvester?.pagesReported).toBeGreaterThan(0);
        expect(r.harvester?.resetMismatches).toBe(0);
        // Self-reap is the built-in collector's default; a harvester of yours is the only reaper.
        expect(r.selfReap).toBe(false);
      }
    });
  }, WATCHDOG_MS);

  it('a buggy harvester: the run says so (lost pages, the seed)', async () => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'run()', () => run({ harvester: example('skips-entry'), iterations: 2, seed }));
    expect(r.ok).toBe(false);
    expect(r.lostPages + r.copyMismatches).toBeGreaterThan(0);
    expect(r.seed).toBe(seed);
  }, WATCHDOG_MS);

  it('migrate() with the GET + chunked CLEAR harvester verifies byte for byte', async () => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'migrate()', () => migrate({ harvester: example('get-chunked-clear'), seed }));
    expect(r.ok).toBe(true);
    expect(r.harvester?.name).toBe('get-chunked-clear');
  }, WATCHDOG_MS);

  it('a harvester with threads of its own: from its module; given in-process it is refused', async () => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'run()', () => run({ harvester: example('per-vcpu-threads'), vcpus: 3, iterations: 2, seed }));
    expect(r.ok, r.error ?? '').toBe(true);
    expect(r.harvester?.pagesReported).toBeGreaterThan(0);
    const threaded = defineHarvester({ name: 'threaded', log: 'ring', threads: 2, create: () => ({ collect() {} }) });
    await expect(run({ harvester: threaded, iterations: 1, seed })).rejects.toThrow('harvester threaded: EINVAL, a harvester with threads of its own is given as its module');
  }, WATCHDOG_MS);

  it('bad input is a ConfigError naming the parameter and the errno; nothing runs', async () => {
    await expect(run({ harvester: 'no/such/harvester.ts' })).rejects.toThrow('--harvester no/such/harvester.ts: ENOENT, no such file');
    await expect(run({ harvester: example('qemu-reaper'), log: 'bitmap' })).rejects.toThrow('log bitmap: EINVAL, harvester qemu-reaper drives log ring');
    await expect(run({ harvester: example('qemu-reaper'), selfReap: true })).rejects.toThrow('selfReap true: EINVAL');
    await expect(stress({ runs: 0 })).rejects.toThrow('runs 0: EINVAL');
    await expect(stress({ mode: 'chaos' as never })).rejects.toThrow('mode chaos: EINVAL');
    await expect(stress({ harvester: inline as never })).rejects.toThrow("harvester inline-reaper: EINVAL, stress needs the harvester's module");
    await expect(stress({ memory: '1GiB' })).rejects.toThrow('memory 1GiB: EINVAL, free runs only');
    await expect(stress({ mode: 'free', memory: 1024 as never })).rejects.toThrow("memory 1024: EINVAL, must be a size such as '1GiB'");
    await expect(stress({ mode: 'free', memory: '3GiB' })).rejects.toThrow('memory 3GiB: EINVAL, at most 2047MiB');
  });
});

describe('stress() with a harvester', () => {
  it.each([['controlled', 200], ['free', 10]] as const)('the QEMU-style reaper: 0 forbidden in %s mode', async (mode, runs) => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'stress()', () => stress({ harvester: example('qemu-reaper'), mode, runs, seed }));
    expect(r.ok).toBe(true);
    expect(r.runs).toBe(runs);
    expect(r.classes.forbidden).toBe(0);
    expect(r.failures).toEqual([]);
    expect(r.table.reduce((n, row) => n + row.runs, 0)).toBe(runs);
  }, WATCHDOG_MS);

  it('the entry-skipping harvester: failures with seed, schedule and a shrunk case', async () => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'stress()', () => stress({ harvester: example('skips-entry'), mode: 'controlled', runs: 100, seed: 1 }));
    expect(r.ok).toBe(false);
    const f = r.failures[0]!;
    expect(['lost-page', 'copy-mismatch']).toContain(f.outcome);
    expect(f.schedule).not.toBeNull();
    expect(f.shrunk?.to.stores).toBe(32);
  }, WATCHDOG_MS);

  it('the copy-before-reset harvester: caught in controlled runs as a copy mismatch or an unlogged write', async () => {
    const r = await withWatchdog(seed, WATCHDOG_MS, 'stress()', () => stress({ harvester: example('copy-before-reset'), mode: 'controlled', runs: 40, seed: 1, shrink: false }));
    expect(r.ok).toBe(false);
    expect(['copy-mismatch', 'unlogged-write', 'lost-page']).toContain(r.table[0]!.outcome);
  }, WATCHDOG_MS);

  it('checkHarvester throws with every failing seed and how to rerun it', async () => {
    const check = checkHarvester({ harvester: example('unaligned-clear'), mode: 'controlled', runs: 10, seed: 1, shrink: false });
    await expect(check).rejects.toBeInstanceOf(HarvesterCheckFailed);
    await expect(check).rejects.toThrow(/seed \d+: lost-page/);
  }, WATCHDOG_MS);
});

describe('the Vitest helper', () => {
  harvesterTest('the QEMU-style reaper survives 200 controlled schedules', { harvester: example('qemu-reaper'), mode: 'controlled', runs: 200, seed: 11 }, WATCHDOG_MS);
  harvesterTest('the GET + chunked CLEAR harvester survives 200 controlled schedules under arm64', { harvester: example('get-chunked-clear'), runs: 200, seed: 12, memoryModel: 'arm64' }, WATCHDOG_MS);
});
