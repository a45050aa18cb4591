/**
 * 9. Harvester SDK: the QEMU-style example harvester (examples/harvesters/qemu-reaper.ts,
 * loaded the way `--harvester` loads it, TypeScript transpiled at load) against the built-in
 * ring collector (RingLogCollector), in the same run on the same data path: one producer
 * thread pushes with DirtyRing.push (stopping at soft-full until a reset, as a vCPU stalls on
 * exit 31), and the main thread collects — harvest every ring, KVM_RESET_DIRTY_RINGS, then hand
 * each page to a sink that sums the offsets (checked every round). Target: the SDK's per-entry
 * accessor calls cost the harvest loop little, ≥ 90 % of the built-in collector's entries/s.
 * And the same reaper in C (examples/harvesters-c/qemu-reaper.c, compiled to WebAssembly as
 * `build-harvester` does, its rings in its linear memory) against the TypeScript one: what the
 * imported ordered accesses and the report call cost. Skipped, saying why, without clang.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MAX_MEMORY_BYTES, clangArgs } from '../../src/cli/build-harvester-command.js';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL } from '../../src/abi/constants.js';
import { loadHarvester } from '../../src/harvester/load-harvester.js';
import { UserHarvesterCollector } from '../../src/harvester/user-collector.js';
import { Vm } from '../../src/kernel/vm.js';
import { userspaceFaults } from '../../src/userspace/faults.js';
import { type LogCollector, RingLogCollector } from '../../src/userspace/log-collectors.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { summarize } from '../lib/stats.js';
import { Backoff, BenchTimeoutError, now } from '../lib/timing.js';
import { type BenchWorker, endBenchWorker, spawnBenchWorker } from '../lib/workers.js';
import { Ctl } from '../workers/ring-protocol.js';

const RING_ENTRIES = 4096;
const SLOT_PAGES = 16384;
const SLOT_ID = 1;
const DONE_BOUND_MS = 10_000;
type Consumer = 'builtin' | 'sdk' | 'c';

let checksum = 0;
const sumSink = (_slot: number, offLo: number, _offHi: number): void => {
  checksum += offLo;
};

interface Setup {
  readonly consumer: Consumer;
  readonly ctl: Int32Array;
  readonly worker: BenchWorker;
  readonly collector: LogCollector;
}

/** The C reaper compiled to WebAssembly in `dir`, or null (and why) without the toolchain. */
function buildCReaper(root: string, dir: string): string | null {
  const out = join(dir, 'qemu-reaper.wasm');
  const r = spawnSync('clang', clangArgs(join(root, 'examples', 'harvesters-c', 'qemu-reaper.c'), out, DEFAULT_MAX_MEMORY_BYTES), { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

async function setup(consumer: Consumer, root: string, cModule: string | null): Promise<Setup> {
  const control = new SharedArrayBuffer(Ctl.WORDS * 4);
  const c = consumer === 'c' ? (await loadHarvester(cModule!)).definition : null;
  const vm = Vm.create(c?.ringSpace ? { ringSpace: c.ringSpace(1, RING_ENTRIES * 16) } : {});
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, RING_ENTRIES * 16);
  const slot = vm.createMemslot({ id: SLOT_ID, baseGfn: 1 << 18, pageCount: SLOT_PAGES, logDirty: true });
  vm.createVcpu();
  const slots = [slot];
  const collector =
    consumer === 'builtin'
      ? new RingLogCollector(vm, 1, slots, userspaceFaults(0))
      : new UserHarvesterCollector(c ?? (await loadHarvester(join(root, 'examples', 'harvesters', 'qemu-reaper.ts'))).definition, vm, 1, slots);
  const worker = await spawnBenchWorker('ring-producer', { mode: 'dirtyring', index: 0, control, vm: vm.buffers(), slot: slot.encodedSlot, firstPage: 0, pageSpan: SLOT_PAGES });
  return { consumer, ctl: new Int32Array(control), worker, collector };
}

/** One round of `count` pushes; returns entries per second. */
function runRound(s: Setup, count: number, round: number): number {
  const { ctl } = s;
  const backoff = new Backoff(`harvester sdk ${s.consumer}: the consumer saw no entries`);
  checksum = 0;
  Atomics.store(ctl, Ctl.DONE, 0);
  Atomics.store(ctl, Ctl.COUNT, count);
  const t0 = now();
  Atomics.store(ctl, Ctl.ROUND, round);
  Atomics.notify(ctl, Ctl.ROUND);
  let received = 0;
  while (received < count) {
    const n = s.collector.collect(sumSink, false);
    if (n > 0) {
      received += n;
      backoff.progress();
    } else {
      if (Atomics.load(ctl, Ctl.FAILED) !== 0) throw new Error(`harvester sdk ${s.consumer}: the producer failed: ${s.worker.failure}`);
      backoff.idle();
    }
  }
  const seconds = (now() - t0) / 1000;
  const deadline = now() + DONE_BOUND_MS;
  while (Atomics.load(ctl, Ctl.DONE) < 1) {
    if (now() > deadline) throw new BenchTimeoutError(`harvester sdk ${s.consumer}: the producer finishing round ${round}`, DONE_BOUND_MS);
    Atomics.wait(ctl, Ctl.DONE, 0, 10);
  }
  if (received !== count) throw new Error(`harvester sdk ${s.consumer}: ${received} entries collected, ${count} pushed`);
  const full = Math.floor(count / SLOT_PAGES);
  const rest = count % SLOT_PAGES;
  const expect = full * ((SLOT_PAGES * (SLOT_PAGES - 1)) / 2) + (rest * (rest - 1)) / 2;
  if (checksum !== expect) throw new Error(`harvester sdk ${s.consumer}: offset checksum ${checksum}, expected ${expect}`);
  if (s.collector.stats.resetMismatches !== 0) throw new Error(`harvester sdk ${s.consumer}: reset count mismatches`);
  return count / seconds;
}

async function teardown(s: Setup): Promise<void> {
  Atomics.store(s.ctl, Ctl.ROUND, -1);
  Atomics.notify(s.ctl, Ctl.ROUND);
  await endBenchWorker(s.worker);
}

export const harvesterSdkSuite: Suite = {
  id: 'harvester-sdk',
  title: '9. harvester SDK',
  async run(ctx: SuiteContext): Promise<void> {
    const repeats = ctx.quick ? 5 : 11;
    const count = ctx.quick ? 1_000_000 : 4_000_000;
    const setups: Setup[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'dirtyring-bench-c-'));
    try {
      const cModule = buildCReaper(ctx.root, dir);
      if (cModule === null) ctx.log('  C reaper: skipped (clang or wasm-ld is not installed: apt-get install clang lld)');
      const consumers: Consumer[] = cModule === null ? ['builtin', 'sdk'] : ['builtin', 'sdk', 'c'];
      for (const c of consumers) setups.push(await setup(c, ctx.root, cModule));
      const samples: Record<Consumer, number[]> = { builtin: [], sdk: [], c: [] };
      let round = 0;
      // Warm-up per consumer (JIT, fresh buffers), not recorded.
      for (const s of setups) runRound(s, Math.min(count, 400_000), ++round);
      for (let r = 0; r < repeats; r++) {
        for (let k = 0; k < setups.length; k++) {
          const s = setups[(k + r) % setups.length]!;
          samples[s.consumer].push(runRound(s, count, ++round));
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      ctx.log(`  built-in ${(summarize(samples.builtin).median / 1e6).toFixed(2)} M/s, qemu-reaper example ${(summarize(samples.sdk).median / 1e6).toFixed(2)} M/s`);
      ctx.reporter.add({
        id: 'harvester-sdk.qemu-reaper.vs-builtin',
        section: this.title,
        name: 'push→harvest→reset→sink, QEMU-style example harvester vs built-in ring collector',
        unit: 'entries/s',
        better: 'higher',
        samples: samples.sdk,
        baseline: { name: 'built-in RingLogCollector', samples: samples.builtin },
        target: { text: '≥ 90 % of the built-in collector', minRatio: 0.9 },
        extra: { recordsPerRound: count, ringEntries: RING_ENTRIES },
      });
      if (samples.c.length > 0) {
        ctx.log(`  C reaper (WebAssembly) ${(summarize(samples.c).median / 1e6).toFixed(2)} M/s`);
        ctx.reporter.add({
          id: 'harvester-sdk.c-reaper.vs-ts-reaper',
          section: this.title,
          name: 'push→harvest→reset→sink, the QEMU-style reaper in C (WebAssembly) vs the same in TypeScript',
          unit: 'entries/s',
          better: 'higher',
          samples: samples.c,
          baseline: { name: 'qemu-reaper.ts', samples: samples.sdk },
          extra: { recordsPerRound: count, ringEntries: RING_ENTRIES },
        });
      }
    } finally {
      await Promise.all(setups.map((s) => teardown(s)));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
