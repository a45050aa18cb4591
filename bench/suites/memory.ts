/**
 * 13. Memory. (a) The emulator's metadata per guest page of a 4 GiB guest: build the VM as
 * `dirtyring run` does (buildGuestVm: the logging capability, two 2 GiB memslots logging dirty
 * pages, 4 vCPUs), attach one Vcpu per vCPU (a vCPU thread's own state: software TLB, MMU),
 * and sum the bytes of every buffer and JS array these objects really hold (retained-bytes.ts),
 * guest memory excepted — SPTEs, dirty bitmaps, write-track counts, rings, TLBs, the shared
 * blocks — over the guest's 1 Mi pages. Target ≤ 16 bytes per page, about what KVM spends.
 * (b) The largest guest that runs on a 24 GiB machine: `dirtyring run` in a child process for
 * growing guests, each page written in every iteration (sequential workload, a fixed number
 * of writes), its peak RSS measured by /usr/bin/time; a straight line through the points
 * gives the bytes a guest byte costs and the fixed part, and the largest guest whose line
 * stays within 24 GiB. Only sizes whose worst case fits in a fraction of the memory free at
 * that moment are run (the machine is shared), so the largest is extrapolated, not run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../../src/abi/constants.js';
import { estimateGuestBytes } from '../../src/cli/memory-budget.js';
import { Vcpu } from '../../src/kernel/vcpu.js';
import { buildGuestVm } from '../../src/userspace/guest-fleet.js';
import type { LogMode } from '../../src/userspace/log-collectors.js';
import type { Suite, SuiteContext } from '../lib/context.js';
import { retainedBytes } from '../lib/retained-bytes.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const GUEST_BYTES = 4 * GiB;
const SLOT_COUNT = 2;
const VCPUS = 4;
const RING_ENTRIES = 4096;
const MAX_BYTES_PER_PAGE = 16;
const MACHINE_BYTES = 24 * GiB;
/** A child run may plan for at most this share of the memory free when it starts. */
const FREE_SHARE = 0.3;
const CHILD_TIMEOUT_MS = 120_000;
const KiB = 1024;
/** Readable names for the properties the buffers were reached through. */
const PART_NAMES: Readonly<Record<string, string>> = { u32: 'rings', i32: 'rings', tags: 'TLB tags', pages: 'TLB pages', slots: 'TLB slot refs', buffer: 'shared blocks' };

interface Metadata {
  readonly bytesPerPage: number;
  readonly breakdown: string;
}

/** Metadata bytes per page of a 4 GiB guest logging with `log`. */
function metadataPerPage(log: LogMode): Metadata {
  const { vm, slots } = buildGuestVm(
    { log, ringEntries: RING_ENTRIES, vcpus: VCPUS, memoryBytes: GUEST_BYTES, memslots: SLOT_COUNT, mutants: 0, ringWithBitmap: false, initiallySet: false },
    true,
  );
  const vcpus = Array.from({ length: VCPUS }, (_, i) => new Vcpu(vm, i));
  const guest = new Set(slots.map((s) => s.buffers.memory));
  const r = retainedBytes([vm, ...vcpus], guest);
  const pages = GUEST_BYTES / PAGE_SIZE;
  const parts = [...r.byName.entries()].filter(([, b]) => b / pages >= 0.01).sort((a, b) => b[1] - a[1]);
  const rest = r.total - parts.reduce((a, [, b]) => a + b, 0);
  const breakdown = [...parts.map(([n, b]) => `${PART_NAMES[n] ?? n} ${(b / pages).toFixed(2)}`), `other ${(rest / pages).toFixed(3)}`].join(', ');
  return { bytesPerPage: r.total / pages, breakdown };
}

/** Peak RSS (bytes) of `dirtyring run` with a guest of `guestBytes`, every page written. */
function runPeakRss(root: string, guestBytes: number): number {
  const pages = guestBytes / PAGE_SIZE;
  const args = ['-f', '%M', process.execPath, join(root, 'bin', 'dirtyring.js'), 'run', '--memory', `${guestBytes / MiB}MiB`, '--memslots', String(Math.max(1, Math.ceil(guestBytes / (2 * GiB)))), '--vcpus', '2', '--iterations', '2', '--workload', 'sequential', '--writes-per-iteration', String(pages / 2), '--seed', '1'];
  const r = spawnSync('/usr/bin/time', args, { encoding: 'utf8', timeout: CHILD_TIMEOUT_MS });
  if (r.status !== 0) throw new Error(`memory: run --memory ${guestBytes / MiB}MiB failed (status ${r.status}): ${(r.stderr ?? '').slice(-400)}`);
  const kib = Number((r.stderr ?? '').trim().split('\n').pop());
  if (!Number.isFinite(kib) || kib <= 0) throw new Error(`memory: no peak RSS from /usr/bin/time: ${r.stderr}`);
  return kib * KiB;
}

/** Least-squares line y = a + b·x. */
function fitLine(xs: readonly number[], ys: readonly number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const b = sxy / sxx;
  return { a: my - b * mx, b };
}

function largestGuest(ctx: SuiteContext): void {
  const section = '13. memory';
  if (!existsSync('/usr/bin/time')) {
    ctx.reporter.skip(`${section}: largest guest`, '/usr/bin/time is missing (it measures the child run\'s peak RSS)');
    return;
  }
  const sizes = (ctx.quick ? [64, 256] : [64, 256, 512, 1024]).map((m) => m * MiB);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const g of sizes) {
    const free = freemem();
    if (estimateGuestBytes(g) > FREE_SHARE * free) {
      ctx.log(`  run --memory ${g / MiB}MiB skipped: its worst case ${(estimateGuestBytes(g) / GiB).toFixed(1)} GiB is over ${FREE_SHARE * 100} % of the ${(free / GiB).toFixed(1)} GiB free`);
      continue;
    }
    const rss = runPeakRss(ctx.root, g);
    xs.push(g);
    ys.push(rss);
    ctx.log(`  run --memory ${g / MiB}MiB: peak RSS ${(rss / MiB).toFixed(0)} MiB`);
  }
  if (xs.length < 2) {
    ctx.reporter.skip(`${section}: largest guest`, `fewer than two sizes fit in ${FREE_SHARE * 100} % of the free memory`);
    return;
  }
  const { a, b } = fitLine(xs, ys);
  const largest = (MACHINE_BYTES - a) / b;
  // The CLI's own check (memory-budget.ts) on a 24 GiB machine with all of it free.
  let admitted = 0;
  while (estimateGuestBytes(admitted + 64 * MiB) <= 0.9 * MACHINE_BYTES) admitted += 64 * MiB;
  ctx.reporter.add({
    id: 'memory.run-bytes-per-guest-byte',
    section,
    name: `dirtyring run: peak RSS per guest byte (line through ${xs.map((x) => `${x / MiB}`).join(', ')} MiB; fixed part ${(a / MiB).toFixed(0)} MiB)`,
    unit: 'B/B',
    better: 'lower',
    samples: [b],
    extra: { guestBytes: xs.join(' '), peakRssBytes: ys.join(' '), fixedBytes: Math.round(a) },
  });
  ctx.reporter.add({
    id: 'memory.largest-guest-24gib',
    section,
    name: `largest guest of dirtyring run on a 24 GiB machine (extrapolated from the line; largest run here ${xs[xs.length - 1]! / MiB} MiB; the CLI's ENOMEM check admits ${(admitted / GiB).toFixed(2)} GiB)`,
    unit: 'GiB',
    better: 'higher',
    samples: [largest / GiB],
    extra: { largestRunBytes: xs[xs.length - 1]!, cliAdmitsBytes: admitted },
  });
}

export const memorySuite: Suite = {
  id: 'memory',
  title: '13. memory: metadata per guest page, largest guest',
  async run(ctx: SuiteContext): Promise<void> {
    const section = '13. memory';
    for (const log of ['ring', 'bitmap', 'clear'] as const) {
      const m = metadataPerPage(log);
      ctx.log(`  ${log}: ${m.bytesPerPage.toFixed(2)} B/page (${m.breakdown})`);
      ctx.reporter.add({
        id: `memory.metadata.${log}`,
        section,
        name: `emulator metadata per guest page, 4 GiB, ${VCPUS} vCPUs, --log ${log}${log === 'ring' ? ` (${RING_ENTRIES}-entry rings)` : ''}: ${m.breakdown}`,
        unit: 'B/page',
        better: 'lower',
        samples: [m.bytesPerPage],
        target: { text: `≤ ${MAX_BYTES_PER_PAGE} bytes per page`, maxValue: MAX_BYTES_PER_PAGE },
      });
    }
    largestGuest(ctx);
  },
};
