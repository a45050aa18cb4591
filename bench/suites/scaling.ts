/**
 * 6. Scaling of the harvest: what it costs userspace to learn the dirty pages and re-arm
 * logging, by ring and by bitmap,
 *  (a) against guest memory size (64 MiB → 4 GiB, memslots of at most 2 GiB) at a fixed dirty
 *      count, and
 *  (b) against the dirty count at a fixed 1 GiB.
 * ring: harvestRing over every vCPU ring + KVM_RESET_DIRTY_RINGS. bitmap, legacy: GET per slot;
 * bitmap, manual: GET + CLEAR of the whole slot per slot; both bitmap modes also walk the
 * returned bitmap to list the dirty pages (what the ring hands over directly). The dirty pages
 * are spread evenly over memory (page i × pages / N, ascending), dirtied by in-thread vCPUs
 * through the fault path before each timed harvest. The ring's authors' claim to reproduce: a
 * bitmap scan grows with memory, a ring harvest with the dirty count.
 */
import {
  KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
  KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
  KVM_EXIT_HLT,
  PAGE_SIZE,
} from '../../src/abi/constants.js';
import { type RingViews } from '../../src/abi/dirty-gfn.js';
import { type HarvestCursor, harvestRing } from '../../src/kernel/dirty-ring.js';
import { popcount } from '../../src/kernel/dirty-bitmap.js';
import { Vcpu } from '../../src/kernel/vcpu.js';
import { Vm } from '../../src/kernel/vm.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { ListProgram } from '../lib/guest.js';
import type { CurveSeries } from '../lib/report.js';
import { summarize } from '../lib/stats.js';
import { now } from '../lib/timing.js';

const BASE_GFN = 1 << 18;
const MAX_SLOT_PAGES = 2 ** 31 / PAGE_SIZE;
const RING_ENTRIES = 65536;
/** Entries pushed per vCPU ring per round (below the soft limit of 65536 − 64). */
const PER_VCPU = 32768;

type Mode = 'ring' | 'legacy' | 'manual';
const MODES: readonly Mode[] = ['ring', 'legacy', 'manual'];
const MODE_NAMES: Record<Mode, string> = {
  ring: 'dirty ring: harvest + reset',
  legacy: 'bitmap, legacy GET (+ list pages)',
  manual: 'bitmap, manual GET + CLEAR (+ list pages)',
};

let found = 0;
const countSink = (): void => {
  found++;
};

/** One VM of `pages` guest pages for one logging mode, with enough vCPUs for `maxDirty`. */
class Setup {
  readonly vm: Vm;
  private readonly vcpus: Vcpu[] = [];
  private readonly slots: { enc: number; pages: number; out: Uint32Array }[] = [];
  private readonly views: RingViews[] = [];
  private readonly cursors: HarvestCursor[] = [];
  private readonly program = new ListProgram();
  private readonly gfns: Float64Array;

  constructor(
    readonly mode: Mode,
    readonly pages: number,
    maxDirty: number,
  ) {
    this.vm = Vm.create();
    if (mode === 'ring') this.vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, RING_ENTRIES * 16);
    if (mode === 'manual') this.vm.enableCap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
    let gfn = BASE_GFN;
    for (let id = 1, left = pages; left > 0; id++) {
      const n = Math.min(left, MAX_SLOT_PAGES);
      const slot = this.vm.createMemslot({ id, baseGfn: gfn, pageCount: n, logDirty: true });
      this.slots.push({ enc: slot.encodedSlot, pages: n, out: new Uint32Array(Math.ceil(n / 64) * 2) });
      gfn += n;
      left -= n;
    }
    const nv = mode === 'ring' ? Math.max(1, Math.ceil(maxDirty / PER_VCPU)) : 1;
    for (let i = 0; i < nv; i++) this.vm.createVcpu();
    for (let i = 0; i < nv; i++) {
      this.vcpus.push(new Vcpu(this.vm, i));
      if (mode === 'ring') {
        this.views.push(this.vm.mmapRing(i));
        this.cursors.push({ fetchIndex: 0 });
      }
    }
    this.gfns = new Float64Array(maxDirty);
  }

  /** Dirty `count` pages spread over memory (not timed). */
  dirty(count: number): void {
    for (let i = 0; i < count; i++) this.gfns[i] = BASE_GFN + Math.floor((i * this.pages) / count);
    const per = this.mode === 'ring' ? PER_VCPU : count;
    for (let v = 0, done = 0; done < count; v++, done += per) {
      const n = Math.min(per, count - done);
      this.program.set(this.gfns.subarray(done, done + n), n);
      const exit = this.vcpus[v]!.run(this.program);
      if (exit !== KVM_EXIT_HLT) throw new Error(`scaling: KVM_RUN returned ${exit}`);
    }
  }

  /** The timed harvest; returns µs and checks that `count` pages were found. */
  harvest(count: number): number {
    found = 0;
    let harvested = 0;
    let reset = 0;
    const t0 = now();
    if (this.mode === 'ring') {
      for (let i = 0; i < this.views.length; i++) harvested += harvestRing(this.views[i]!, this.cursors[i]!, RING_ENTRIES, countSink);
      if (harvested > 0) reset = this.vm.resetDirtyRings();
    } else {
      for (const s of this.slots) {
        this.vm.getDirtyLog(s.enc, s.out);
        if (this.mode === 'manual') this.vm.clearDirtyLog(s.enc, 0, s.pages, s.out);
        const out = s.out;
        for (let w = 0; w < out.length; w++) if (out[w] !== 0) found += popcount(out[w]!);
      }
    }
    const us = (now() - t0) * 1000;
    if (found !== count) throw new Error(`scaling: ${this.mode} found ${found} dirty pages, expected ${count}`);
    if (reset !== harvested) throw new Error(`scaling: the ring reset ${reset} entries, ${harvested} were harvested`);
    return us;
  }
}

function measure(modes: readonly Mode[], pages: number, counts: readonly number[], repeats: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const maxDirty = Math.max(...counts);
  for (const mode of modes) {
    const s = new Setup(mode, pages, maxDirty);
    for (const count of counts) {
      s.dirty(count);
      s.harvest(count); // warm-up
      const samples: number[] = [];
      for (let r = 0; r < repeats; r++) {
        s.dirty(count);
        samples.push(s.harvest(count));
      }
      out.set(`${mode}:${count}`, samples);
    }
  }
  return out;
}

export const scalingSuite: Suite = {
  id: 'scaling',
  title: '6. scaling of the harvest',
  async run(ctx: SuiteContext): Promise<void> {
    const section = this.title;
    const repeats = ctx.quick ? 7 : 21;
    const MiB = 2 ** 20;
    const sizes = ctx.quick ? [64, 256, 1024, 4096].map((m) => m * MiB) : [64, 128, 256, 512, 1024, 2048, 4096].map((m) => m * MiB);
    const fixedDirty = 1024;
    // Warm-up (JIT) on a small guest, not recorded: the first size would otherwise pay for it.
    measure(MODES, 16384, [16, fixedDirty, 4096], ctx.quick ? 40 : 80);
    const bySize = new Map<Mode, { x: number; samples: number[] }[]>();
    for (const bytes of sizes) {
      const m = measure(MODES, bytes / PAGE_SIZE, [fixedDirty], repeats);
      for (const mode of MODES) {
        const list = bySize.get(mode) ?? [];
        list.push({ x: bytes, samples: m.get(`${mode}:${fixedDirty}`)! });
        bySize.set(mode, list);
      }
      ctx.log(`  ${bytes / MiB} MiB: ${MODES.map((mo) => `${mo} ${summarize(m.get(`${mo}:${fixedDirty}`)!).median.toFixed(0)} µs`).join(', ')}`);
    }
    ctx.reporter.addCurve({
      id: 'scaling-memory',
      title: `Harvest cost vs guest memory (${fixedDirty} dirty pages)`,
      xLabel: 'guest memory (memslots of ≤ 2 GiB)',
      yLabel: 'time per harvest (median, bars p25–p75)',
      xUnit: 'bytes',
      series: MODES.map((mode) => series(MODE_NAMES[mode], bySize.get(mode)!)),
      note: `dirtyring emulator, ${new Date().toISOString().slice(0, 10)}; ${fixedDirty} pages spread evenly; log-log`,
    });
    const counts = ctx.quick ? [16, 256, 4096, 65536] : [16, 64, 256, 1024, 4096, 16384, 65536];
    const fixedBytes = 1024 * MiB;
    const m = measure(MODES, fixedBytes / PAGE_SIZE, counts, repeats);
    for (const c of counts) ctx.log(`  1 GiB, ${c} dirty: ${MODES.map((mo) => `${mo} ${summarize(m.get(`${mo}:${c}`)!).median.toFixed(0)} µs`).join(', ')}`);
    ctx.reporter.addCurve({
      id: 'scaling-dirty',
      title: 'Harvest cost vs dirty pages (1 GiB guest)',
      xLabel: 'dirty pages per harvest',
      yLabel: 'time per harvest (median, bars p25–p75)',
      xUnit: 'count',
      series: MODES.map((mode) => series(MODE_NAMES[mode], counts.map((c) => ({ x: c, samples: m.get(`${mode}:${c}`)! })))),
      note: `dirtyring emulator, ${new Date().toISOString().slice(0, 10)}; pages spread evenly over 1 GiB; log-log`,
    });

    // Table rows: the ring against each bitmap mode at the ends of both sweeps.
    const smallest = sizes[0]!;
    const largest = sizes[sizes.length - 1]!;
    const at = (mode: Mode, bytes: number): number[] => bySize.get(mode)!.find((p) => p.x === bytes)!.samples;
    for (const bytes of [smallest, largest]) {
      for (const mode of ['legacy', 'manual'] as const) {
        ctx.reporter.add({
          id: `scaling.memory-${bytes / MiB}MiB.ring-vs-${mode}`,
          section,
          name: `${fmtMiB(bytes)}, ${fixedDirty} dirty: ring harvest vs ${mode === 'legacy' ? 'legacy GET' : 'manual GET+CLEAR'}`,
          unit: 'us',
          better: 'lower',
          samples: at('ring', bytes),
          baseline: { name: `bitmap ${mode}`, samples: at(mode, bytes) },
        });
      }
    }
    for (const c of [counts[0]!, counts[counts.length - 1]!]) {
      ctx.reporter.add({
        id: `scaling.dirty-${c}.ring-vs-legacy`,
        section,
        name: `1 GiB, ${c} dirty: ring harvest vs legacy GET`,
        unit: 'us',
        better: 'lower',
        samples: m.get(`ring:${c}`)!,
        baseline: { name: 'bitmap legacy', samples: m.get(`legacy:${c}`)! },
      });
    }
    const growth = (mode: Mode): number => summarize(at(mode, largest)).median / summarize(at(mode, smallest)).median;
    ctx.reporter.add({
      id: 'scaling.memory-growth',
      section,
      name: `cost growth ${fmtMiB(smallest)} → ${fmtMiB(largest)} (×${largest / smallest} memory): ring ×${growth('ring').toFixed(2)}, legacy ×${growth('legacy').toFixed(1)}, manual ×${growth('manual').toFixed(1)}`,
      unit: 'us',
      better: 'lower',
      samples: at('ring', largest),
      baseline: { name: 'ring at smallest', samples: at('ring', smallest) },
    });
  },
};

function fmtMiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / 2 ** 20} MiB`;
}

function series(name: string, pts: readonly { x: number; samples: number[] }[]): CurveSeries {
  return {
    name,
    points: pts.map((p) => {
      const s = summarize(p.samples);
      return { x: p.x, y: s.median, lo: s.p25, hi: s.p75 };
    }),
  };
}
