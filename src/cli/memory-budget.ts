/**
 * Memory checked before a guest is built: a guest that cannot fit is refused with ENOMEM, the
 * estimate and the limit, rather than killed by the OOM killer half-way through.
 *
 * What a guest costs, measured (peak RSS, `/usr/bin/time -f %M`, a sequential workload that
 * touches every page): `run --memory 1GiB` 2.20 GB, 64MiB 0.19 GB; `migrate --memory 1GiB`
 * 1.38–1.51 GB (the destination written whole by the bulk round; the source only where the
 * guest wrote). Guest memory is a SharedArrayBuffer whose pages the kernel maps on first
 * write, and every command keeps a second copy of it: `run` the page copier's destination
 * (the copy verified byte for byte), `migrate` the migration destination. Per page, the
 * bitmaps, the oracle's tables and the rings are a few bytes. The estimate is the worst
 * case — every page of both copies touched — and a fixed part for Node, V8 and the workers.
 */
import { constrainedMemory, env } from 'node:process';
import { freemem, totalmem } from 'node:os';
import { ConfigError } from '../base/config-error.js';
import { parseSize } from '../harness/run-config.js';

/** Copies of guest memory a command holds: the guest's and the destination's. */
const GUEST_COPIES = 2;
/** Per-page structures (dirty bitmaps, oracle tables, page headers) over both copies: 5 %. */
const PER_PAGE_OVERHEAD = 0.05;
/** Node, V8's heaps, the worker threads and their rings: measured 0.19 GB for a 64 MiB guest. */
const FIXED_BYTES = 256 * 1024 * 1024;
/** Share of the available memory a command may plan to use: the rest for the OS, page cache and other processes. */
export const MEMORY_HEADROOM = 0.9;
/** Overrides the limit (a size, e.g. 8GiB): for tests, and for a machine whose swap should count. */
export const MEMORY_LIMIT_ENV = 'DIRTYRING_MEMORY_LIMIT';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** A size to one decimal, in GiB from 1 GiB on, else in MiB. */
function approx(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${(n / MiB).toFixed(0)} MiB`;
}

/** Bytes a command needs for a guest of `guestBytes` (SMRAM included), at worst, holding `copies` copies of it. */
export function estimateGuestBytes(guestBytes: number, copies = GUEST_COPIES): number {
  return Math.ceil(guestBytes * copies * (1 + PER_PAGE_OVERHEAD) + FIXED_BYTES);
}

/** The limit, and where it comes from. */
export function memoryLimit(): { bytes: number; source: string } {
  const override = env[MEMORY_LIMIT_ENV];
  if (override !== undefined && override.trim() !== '') {
    return { bytes: parseSize(MEMORY_LIMIT_ENV, override.trim()), source: `${MEMORY_LIMIT_ENV}=${override.trim()}` };
  }
  const total = totalmem();
  // A container's cgroup limit, when there is one (unconstrained: 0, or a huge number).
  const cgroup = typeof constrainedMemory === 'function' ? constrainedMemory() : 0;
  const constrained = cgroup > 0 && cgroup < total;
  const available = Math.min(freemem(), constrained ? cgroup : total);
  const what = constrained ? `the cgroup limit ${approx(cgroup)} or the memory available now` : `the ${approx(freemem())} available now of ${approx(total)}`;
  return { bytes: Math.floor(available * MEMORY_HEADROOM), source: `${Math.round(MEMORY_HEADROOM * 100)}% of ${what}; ${MEMORY_LIMIT_ENV} overrides it` };
}

/**
 * What each command holds at once. A stress campaign runs guests one after another, but a
 * finished run's buffers go when the garbage collector frees them, not at once: 12 free runs of
 * 1 GiB peaked at 4.7 GB, one run at 2.2 GB. So it counts two runs' guests and copies.
 */
const COPIES = {
  run: { copies: GUEST_COPIES, what: 'the guest\'s memory twice — the guest and the copy verified against it' },
  migrate: { copies: GUEST_COPIES, what: 'the guest\'s memory twice — the source and the destination' },
  stress: { copies: 2 * GUEST_COPIES, what: 'the guest\'s memory four times — the guest and the copy of a run, and of the run before it until it is collected' },
} as const;

/** Refuses (ENOMEM, exit 2) a guest whose estimate is above the limit. */
export function checkGuestMemory(command: keyof typeof COPIES, guestBytes: number, given: string | undefined): void {
  const need = estimateGuestBytes(guestBytes, COPIES[command].copies);
  const limit = memoryLimit();
  if (need <= limit.bytes) return;
  throw new ConfigError(
    '--memory',
    given ?? approx(guestBytes),
    'ENOMEM',
    `${command} would need about ${approx(need)} (${COPIES[command].what} — plus ${approx(FIXED_BYTES)}), more than the limit of ${approx(limit.bytes)} (${limit.source})`,
  );
}
