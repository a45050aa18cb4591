/** `dirtyring migrate`: a pre-copy live migration with a progress bar per round and a table. */
import { parseArgs } from 'node:util';
import { spawnNodeVcpuWorker } from '../platform/node-vcpu-host.js';
import { type MigrationConfig, MIGRATION_DEFAULTS, validateMigrationConfig } from '../userspace/migration/migration-config.js';
import { checkGuestMemory } from './memory-budget.js';
import type { MigrationSummary, RoundReport } from '../userspace/migration/migration-report.js';
import { type MigrationProgress, runMigration } from '../userspace/migration/migration.js';
import { GUEST_OPTIONS, PACE_OPTIONS, guestInput, intOption, paceInput } from './cli-args.js';
import { withInterrupt } from './interrupt.js';
import { MiB, formatBytes, formatCount, logDescription, msAsSeconds, table, usAsMs, writerName } from './format.js';
import { ProgressLine, bar } from './progress-bar.js';
import { harvesterHooks, printSummary, loadCliHarvester } from './harvester-option.js';

const D = MIGRATION_DEFAULTS;
/** The bar is redrawn this often: smooth to the eye, cheap for the migration. */
const PROGRESS_REDRAW_MS = 100;
/** Dirty-limit adjustments and differing pages printed (the JSON summary has them all). */
const ADJUSTMENTS_PRINTED = 8;
const MISMATCHES_PRINTED = 10;

export const MIGRATE_USAGE = `usage: dirtyring migrate [options]

Live-migrate a running guest (pre-copy): vCPU threads keep dirtying memory while userspace sends
it to a destination at a limited bandwidth, round after round of dirty-page collection, until the
rest fits in the allowed downtime; then stop-and-copy, and a byte-for-byte comparison.

  --log MODE                ring (harvest + reset, default) | bitmap (legacy GET) |
                            clear (manual protect: GET, CLEAR just before each chunk is sent)
  --vcpus N                 vCPU threads (default ${D.vcpus})
  --memory SIZE             guest memory (default ${formatBytes(D.memoryBytes)})
  --memslots N              split memory into N memslots (default ${D.memslots})
  --ring-entries N          --log ring: entries per vCPU ring (default ${D.ringEntries})
  --clear-chunk-pages N     --log clear: pages per CLEAR, a multiple of 64 (default ${D.clearChunkPages})
  --initially-set           --log clear: KVM_DIRTY_LOG_INITIALLY_SET (no up-front write-protect)
  --bandwidth-mibs N        link bandwidth in MiB/s (default ${D.bandwidthMiBs})
  --bandwidth-pages N       ... or in 4 KiB pages per second
  --max-downtime-ms N       converged when the rest goes over the link within N ms (default ${D.maxDowntimeMs})
  --max-rounds N            rounds (bulk pass included) before stop-and-copy is forced (default ${D.maxRounds})
  --dirty-limit-mibs N      --log ring: QEMU's dirty-limit, N MiB/s per vCPU, started by the
                            throttle trigger (vCPUs sleep after each ring-full exit); 0 = off
  --dirty-limit-period-ms N how often dirty-limit measures and adjusts (default ${D.dirtyLimitPeriodMs}, as QEMU)
  --dirty-rate-mibs N       pace each vCPU to N MiB/s of page writes; 0 = unpaced (default ${D.dirtyRateMiBs})
  --working-set SIZE        the guest writes only the first SIZE of memory; 0 = all (default)
  --workload KIND           random | sequential | hotset | selftest (default ${D.workload})
  --burst-pages N           largest multi-page emulated instruction (default ${D.burstPages})
  --burst-percent N         share of burst instructions in percent (default ${D.burstPercent})
  --device-writers N        DMA device threads writing with no running vCPU (default 0)
  --device-interval-us N    pause between two device writes (default ${D.deviceIntervalUs})
  --ring-with-bitmap on|off --log ring: device writes in a bitmap read last (default on with devices)
  --destination-thread      apply pages in a separate destination thread (over a shared-memory wire)
  --warmup-ms N             let the guest run N ms before migrating (default 0)
  --mutant NAME[,NAME]      a known bug (copy-before-reset, no-final-stop, ...): must not verify
  --seed N                  workload seed (default: random, printed)
  --harvester FILE          your own harvester (docs/HARVESTER-API.md) in the collector's
                            place; its log mode is the migration's
  --harvester-threads N     run it on N threads of its own (1..8), or 0 on this thread
  --json                    print one JSON summary as the last line of stdout
  -h, --help                this help

Exit status: 0 the destination equals the source, 1 it does not (or the run failed), 2 bad input.`;

export async function migrateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...GUEST_OPTIONS,
      ...PACE_OPTIONS,
      'bandwidth-mibs': { type: 'string' },
      'bandwidth-pages': { type: 'string' },
      'max-downtime-ms': { type: 'string' },
      'max-rounds': { type: 'string' },
      'dirty-limit-mibs': { type: 'string' },
      'dirty-limit-period-ms': { type: 'string' },
      'destination-thread': { type: 'boolean' },
      harvester: { type: 'string' },
      'harvester-threads': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(MIGRATE_USAGE);
    return 0;
  }
  const json = values.json === true;
  const harvester = await loadCliHarvester(values.harvester, values.log, values['harvester-threads']);
  const input: Partial<MigrationConfig> = {
    ...guestInput(values),
    ...(harvester !== null && { log: harvester.definition.log }),
    ...paceInput(values),
    bandwidthMiBs: intOption('bandwidth-mibs', values['bandwidth-mibs']),
    bandwidthPagesPerSec: intOption('bandwidth-pages', values['bandwidth-pages']),
    maxDowntimeMs: intOption('max-downtime-ms', values['max-downtime-ms']),
    maxRounds: intOption('max-rounds', values['max-rounds']),
    dirtyLimitMiBs: intOption('dirty-limit-mibs', values['dirty-limit-mibs']),
    dirtyLimitPeriodMs: intOption('dirty-limit-period-ms', values['dirty-limit-period-ms']),
    destinationThread: values['destination-thread'],
  };

  // Validated here first (runMigration validates again) to refuse a guest that cannot fit before it is built.
  checkGuestMemory('migrate', validateMigrationConfig(input).memoryBytes, values.memory);
  // Progress goes to stderr with --json so that stdout holds only the JSON line.
  const stream = json ? process.stderr : process.stdout;
  const progress = new ProgressLine(stream);
  const out = (s: string): void => progress.line(s);
  const t0 = performance.now();
  // Off a terminal the bar is never drawn: ask for no progress reports at all.
  const barHooks = progress.interactive
    ? {
        progressIntervalMs: PROGRESS_REDRAW_MS,
        onRoundStart: (p: MigrationProgress) => progress.update(progressText(p, t0)),
        onProgress: (p: MigrationProgress) => progress.update(progressText(p, t0)),
      }
    : {};
  return withInterrupt('round', async (interrupt) => {
    const summary = await runMigration(input, {
      spawn: spawnNodeVcpuWorker,
      ...barHooks,
      onStart: (c) => out(describe(c)),
      onRound: (r) => out(roundLine(r)),
      shouldStop: () => interrupt.requested,
      ...(harvester !== null && harvesterHooks(harvester)),
    });
    printSummary(out, summaryLines(summary), summary, harvester, json);
    if (interrupt.requested) return interrupt.exitStatus();
    return summary.ok ? 0 : 1;
  });
}

function describe(c: MigrationConfig): string {
  const ws = c.workingSetBytes > 0 ? ` over ${formatBytes(c.workingSetBytes)}` : '';
  const pace = c.dirtyRateMiBs > 0 ? `${c.dirtyRateMiBs} MiB/s per vCPU` : 'unpaced';
  const limit = c.dirtyLimitMiBs > 0 ? `, dirty-limit ${c.dirtyLimitMiBs} MiB/s per vCPU` : '';
  return (
    `dirtyring migrate: ${c.vcpus} vCPUs, ${formatBytes(c.memoryBytes)}, ${logDescription(c)}, ${c.workload} workload${ws} (${pace}), ` +
    `link ${c.bandwidthPagesPerSec > 0 ? `${c.bandwidthPagesPerSec} pages/s` : `${c.bandwidthMiBs} MiB/s`}, max downtime ${c.maxDowntimeMs} ms, max ${c.maxRounds} rounds${limit}, seed ${c.seed}`
  );
}

function progressText(p: MigrationProgress, t0: number): string {
  const s = msAsSeconds(performance.now() - t0, 1);
  return `  round ${String(p.round).padStart(3)} ${p.kind.padEnd(13)} ${bar(p.pagesSent, p.pagesToSend)} ${formatCount(p.pagesSent)}/${formatCount(p.pagesToSend)} pages  ${s} s`;
}

function roundLine(r: RoundReport): string {
  const next = r.kind === 'stop-and-copy' ? '' : `, ${formatCount(r.remainingPages)} dirty (${r.dirtyRateMiBs.toFixed(1)} MiB/s) → ~${r.expectedDowntimeMs.toFixed(0)} ms`;
  return (
    `  round ${String(r.round).padStart(3)} ${r.kind.padEnd(13)} sent ${formatCount(r.pagesSent).padStart(6)} pages ` +
    `(${formatCount(r.pagesResent)} resent) in ${r.durationMs.toFixed(0)} ms${next}` +
    `${r.ringFullExits > 0 ? `, ${r.ringFullExits} ring-full` : ''}${r.throttleSleepMs > 0 ? `, throttled ${r.throttleSleepMs.toFixed(0)} ms` : ''}`
  );
}

function roundTable(rounds: readonly RoundReport[]): string {
  return table(
    ['round', 'kind', 'sent', 'resent', 'MiB', 'ms', 'dirty', 'dirty MiB/s', 'est. down ms', 'ring-full', 'stall ms', 'throttle ms'],
    rounds.map((r) => [
      String(r.round),
      r.kind,
      formatCount(r.pagesSent),
      formatCount(r.pagesResent),
      (r.bytesSent / MiB).toFixed(1),
      r.durationMs.toFixed(0),
      r.kind === 'stop-and-copy' ? '-' : formatCount(r.dirtyPages),
      r.kind === 'stop-and-copy' ? '-' : r.dirtyRateMiBs.toFixed(1),
      r.kind === 'stop-and-copy' ? '-' : r.expectedDowntimeMs.toFixed(1),
      formatCount(r.ringFullExits),
      r.stallMs.toFixed(1),
      r.throttleSleepMs.toFixed(0),
    ]),
  );
}

export function summaryLines(s: MigrationSummary): string[] {
  const rows: [string, string][] = [
    ['log mode', s.log],
    ['rounds (bulk + iterations + stop-and-copy)', String(s.rounds)],
    ['converged', s.converged ? 'yes' : `no (round limit ${s.maxRounds})`],
    ['pages sent / resent', `${formatCount(s.pagesSent)} / ${formatCount(s.pagesResent)} (${s.pagesSent > 0 ? ((s.pagesResent / s.pagesSent) * 100).toFixed(1) : '0.0'} %)`],
    ['bytes sent', `${(s.bytesSent / MiB).toFixed(1)} MiB`],
    ['downtime (parked → last page applied)', `${s.downtimeMs.toFixed(1)} ms for ${formatCount(s.finalPages)} pages (max ${s.maxDowntimeMs} ms; parking took ${s.parkMs.toFixed(1)} ms)`],
    ['migration time / total', `${msAsSeconds(s.migrationMs, 2)} s / ${msAsSeconds(s.totalMs, 2)} s`],
    ['guest writes', formatCount(s.guestWrites)],
  ];
  if (s.log === 'ring') {
    rows.push(
      ['ring-full exits', formatCount(s.ringFullExits)],
      ['vCPU stall time (total / max)', `${s.stallMs.toFixed(1)} ms / ${s.maxStallMs.toFixed(2)} ms`],
      ['reset calls / entries reset', `${formatCount(s.resetCalls)} / ${formatCount(s.entriesReset)}`],
    );
  } else {
    rows.push(['GET calls / CLEAR calls', `${formatCount(s.getCalls)} / ${formatCount(s.clearCalls)}`]);
  }
  if (s.dirtyLimit) {
    const d = s.dirtyLimit;
    rows.push(
      ['dirty-limit', `${d.quotaMiBs} MiB/s per vCPU, ${d.startedAtMs === null ? 'never triggered' : `on at ${msAsSeconds(d.startedAtMs, 2)} s`}, ${d.adjustments} adjustments`],
      ['dirty-limit sleeps', `${formatCount(d.sleeps)} sleeps, ${d.sleepMs.toFixed(0)} ms; last sleep/full ${d.throttleUs.map((u) => `${usAsMs(u, 0)} ms`).join(' ')}`],
    );
  }
  if (s.deviceWrites > 0) rows.push(['DMA device writes', formatCount(s.deviceWrites)]);
  rows.push(['verification', s.interrupted ? 'not done (migration cancelled)' : s.verified ? 'destination == source, byte for byte' : `${s.mismatchedPages} pages differ`]);
  const lines = ['', roundTable(s.roundReports), '', table(['summary', ''], rows)];
  if (s.dirtyLimit && s.dirtyLimit.history.length > 0) {
    lines.push('dirty-limit adjustments (rate per vCPU → sleep per full ring):');
    for (const h of s.dirtyLimit.history.slice(0, ADJUSTMENTS_PRINTED)) {
      lines.push(
        `  at ${msAsSeconds(h.atMs, 2)} s: ${h.ratesMiBs.map((r) => r.toFixed(1)).join(' ')} MiB/s → ` +
          `${h.throttleUs.map((u) => usAsMs(u, 0)).join(' ')} ms`,
      );
    }
  }
  if (s.mutants.length > 0) lines.push(`mutants enabled: ${s.mutants.join(', ')}`);
  for (const m of s.mismatches.slice(0, MISMATCHES_PRINTED)) {
    lines.push(
      `MISMATCH: slot ${m.slot} offset ${m.offset} (gfn 0x${m.gfn.toString(16)}): source has round ${m.sourceRound}'s write by ${writerName(m.writer)}, ` +
        `destination round ${m.destinationRound}'s`,
    );
  }
  if (s.error) lines.push(`migration failed: ${s.error}`);
  if (s.interrupted) {
    lines.push(
      `INTERRUPTED after ${s.rounds} round(s): migration cancelled, ${(s.bytesSent / MiB).toFixed(1)} MiB sent; the guest stays at the source and the copy was not verified (seed ${s.seed})`,
    );
    return lines;
  }
  lines.push(
    s.ok
      ? `OK: verified after ${s.rounds} rounds, ${(s.bytesSent / MiB).toFixed(1)} MiB sent, downtime ${s.downtimeMs.toFixed(1)} ms${s.converged ? '' : ' (not converged)'} (seed ${s.seed})`
      : `FAILED: ${s.mismatchedPages} pages differ, ${s.resetMismatches} reset count mismatches, ${s.badRecords} bad records, ` +
          `${s.kernelWarnings} kernel warnings${s.error ? ', run failed' : ''} — reproduce with --seed ${s.seed}`,
  );
  return lines;
}

