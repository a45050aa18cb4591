/**
 * `dirtyring conformance`: every fidelity scenario of a directory on the emulator, compared
 * with its checked-in expectation, and on the real /dev/kvm where it works, compared with the
 * kernel; one row per scenario.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import { diffResults } from '../fidelity/scenario.js';
import type { Scenario, StepResult } from '../fidelity/scenario.js';
import {
  type KvmHost,
  defaultSuiteDir,
  expectedPathOf,
  kvmHost,
  KERNEL_ATTEMPTS,
  loadExpected,
  runOnKernelAgainst,
  scenarioFiles,
} from '../fidelity/suite.js';
import { emulate, readScenarioFile } from './fidelity-input.js';
import { widest } from './format.js';

export const CONFORMANCE_USAGE = `usage: dirtyring conformance [--dir DIR] [--json]

Run every scenario of DIR (default: the project's test/scenarios) on the emulator and compare
it with its checked-in DIR/NAME.expected.json, and where /dev/kvm works, run it on the real
kernel too and compare the kernel with the emulator. Prints one row per scenario:
match, DIFFER, not comparable (a fault-path scenario on a host that emulates every guest
store), or kvm unavailable: REASON.

  --dir DIR      the scenario directory
  --json         print one JSON object instead of the table
  -h, --help     this help

Exit status: 0 no difference anywhere, 1 a difference (or a scenario that cannot be run, or
one without an expectation), 2 bad input.`;

interface ConformanceRow {
  file: string;
  name: string;
  path: string;
  /** Emulator against the checked-in expectation. */
  expected: 'match' | 'differ' | 'missing' | 'error';
  expectedDifferences: string[];
  /** Emulator against the real kernel. */
  kernel: 'match' | 'differ' | 'notComparable' | 'unavailable' | 'failed' | 'error';
  kernelReason?: string;
  /** Set when the kernel matched only on a rerun (runOnKernelAgainst). */
  kernelNote?: string;
  kernelDifferences: string[];
}

function expectedVerdict(r: ConformanceRow): string {
  switch (r.expected) {
    case 'match':
      return 'match';
    case 'differ':
      return 'DIFFER';
    case 'missing':
      return 'DIFFER: no expectation file';
    case 'error':
      return 'ERROR';
  }
}

function kernelColumn(r: ConformanceRow): string {
  switch (r.kernel) {
    case 'match':
      return r.kernelNote ? `match (${r.kernelNote})` : 'match';
    case 'differ':
      return 'DIFFER';
    case 'notComparable':
      return 'not comparable';
    case 'unavailable':
      return `kvm unavailable: ${r.kernelReason ?? ''}`;
    case 'failed':
      return 'kvm run FAILED';
    case 'error':
      return '-';
  }
}

async function conformanceRow(dir: string, file: string, host: KvmHost): Promise<ConformanceRow> {
  const full = join(dir, file);
  const row: ConformanceRow = {
    file,
    name: file,
    path: '?',
    expected: 'error',
    expectedDifferences: [],
    kernel: 'error',
    kernelDifferences: [],
  };
  let s: Scenario;
  let emulator: StepResult[];
  try {
    s = readScenarioFile(full, 'scenario');
    row.name = s.name;
    row.path = s.path;
    emulator = emulate(s, full);
  } catch (e) {
    row.expectedDifferences = [(e as Error).message];
    return row;
  }
  const expName = basename(expectedPathOf(full));
  try {
    const expected = loadExpected(full);
    if (expected === undefined) {
      row.expected = 'missing';
      row.expectedDifferences = [`${expName} does not exist`];
    } else {
      row.expectedDifferences = diffResults(expected, emulator, s.steps);
      row.expected = row.expectedDifferences.length === 0 ? 'match' : 'differ';
    }
  } catch (e) {
    row.expected = 'error';
    row.expectedDifferences = [`${expName}: ${(e as Error).message}`];
  }
  const kernel = await runOnKernelAgainst(s, emulator, host);
  if (kernel.kind === 'results') {
    row.kernelDifferences = diffResults(kernel.results, emulator, s.steps);
    row.kernel = row.kernelDifferences.length === 0 ? 'match' : 'differ';
    if ((kernel.attempts ?? 1) > 1) row.kernelNote = `kernel run ${kernel.attempts} of ${KERNEL_ATTEMPTS}: host timing moved an exit before`;
  } else {
    row.kernel = kernel.kind;
    row.kernelReason = kernel.reason;
  }
  return row;
}

function rowFails(r: ConformanceRow): boolean {
  return r.expected !== 'match' || r.kernel === 'differ' || r.kernel === 'failed' || r.kernel === 'error';
}

export async function conformanceCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(CONFORMANCE_USAGE);
    return 0;
  }
  const dir = values.dir !== undefined ? resolve(values.dir) : defaultSuiteDir();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError('--dir', values.dir ?? dir, 'ENOENT', 'not a directory');
  }
  const files = scenarioFiles(dir);
  if (files.length === 0) throw new ConfigError('--dir', values.dir ?? dir, 'ENOENT', 'no scenario files (*.json) in it');
  const host = kvmHost();
  const rows: ConformanceRow[] = [];
  for (const f of files) rows.push(await conformanceRow(dir, f, host));
  const ok = !rows.some(rowFails);
  if (values.json) console.log(JSON.stringify({ ok, dir, kvm: host, scenarios: rows }));
  else for (const line of conformanceLines(rows, dir, host)) console.log(line);
  return ok ? 0 : 1;
}

/** The table of every scenario's verdicts, each difference, and the totals. */
function conformanceLines(rows: readonly ConformanceRow[], dir: string, host: KvmHost): string[] {
  const head = ['scenario', 'path', 'emulator vs expected', 'emulator vs kernel'];
  const cells = rows.map((r) => [r.file.replace(/\.json$/, ''), r.path, expectedVerdict(r), kernelColumn(r)]);
  // The last column is not padded: a kernel reason may be long.
  const last = head.length - 1;
  const widths = head.map((h, c) => (c === last ? h.length : widest(cells.map((row) => row[c]!), h.length)));
  const line = (row: readonly string[]): string => row.map((cell, c) => (c === last ? cell : cell.padEnd(widths[c]!))).join('  ');
  const lines = [`conformance: ${rows.length} scenarios in ${dir}`, hostLine(host), ''];
  lines.push(line(head), line(widths.map((w, c) => '-'.repeat(c === last ? head[last]!.length : w))));
  for (const cell of cells) lines.push(line(cell));
  for (const r of rows) for (const d of differenceLines(r)) lines.push(d);
  lines.push('', totalsLine(rows));
  return lines;
}

function hostLine(host: KvmHost): string {
  if (!host.available) return `kernel: kvm unavailable: ${host.reason ?? ''}`;
  return `kernel: /dev/kvm, this host's KVM runs guests ${
    host.execution === 'emulated'
      ? 'by emulating every instruction (fault-path scenarios are not comparable here)'
      : 'natively (emulated-path scenarios with guest accesses are not comparable here)'
  }`;
}

/** A scenario's differences, under its file name (nothing when it has none). */
function differenceLines(r: ConformanceRow): string[] {
  const lines = [
    ...r.expectedDifferences.map((d) => `emulator vs expected: ${d}`),
    ...r.kernelDifferences.map((d) => `emulator vs kernel (expected = kernel, got = emulator): ${d}`),
    ...(r.kernel === 'failed' ? [`kernel run failed: ${r.kernelReason ?? ''}`] : []),
  ];
  return lines.length === 0 ? [] : [`\n${r.file}:`, ...lines.map((l) => `  ${l}`)];
}

function totalsLine(rows: readonly ConformanceRow[]): string {
  const count = (k: ConformanceRow['kernel']): number => rows.filter((r) => r.kernel === k).length;
  const failed = rows.filter(rowFails).length;
  const expMatch = rows.filter((r) => r.expected === 'match').length;
  return (
    `${failed === 0 ? 'OK' : 'FAILED'}: emulator matches the expectation in ${expMatch} of ${rows.length}; ` +
    `kernel: ${count('match')} match, ${count('differ')} differ, ${count('notComparable')} not comparable here` +
    `${count('unavailable') ? `, ${count('unavailable')} kvm unavailable` : ''}${count('failed') ? `, ${count('failed')} failed` : ''}`
  );
}
