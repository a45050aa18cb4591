/**
 * `dirtyring replay` and `dirtyring conformance`: the fidelity scenarios (issue 7) run by the
 * emulator deterministically and by the native runner on the real /dev/kvm, and compared.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import { ScenarioError, runScenarioOnEmulator } from '../fidelity/emulator-engine.js';
import { diffResults, parseScenario } from '../fidelity/scenario.js';
import type { Scenario, Step, StepResult } from '../fidelity/scenario.js';
import {
  type Comparison,
  type KernelOutcome,
  type KvmHost,
  compareEngines,
  defaultSuiteDir,
  expectedPathOf,
  kvmHost,
  KERNEL_ATTEMPTS,
  loadExpected,
  runOnKernel,
  runOnKernelAgainst,
  scenarioFiles,
} from '../fidelity/suite.js';

export const REPLAY_USAGE = `usage: dirtyring replay SCENARIO.json [--engine emulator|kvm] [--compare] [--json]

Run one fidelity scenario and print the result of every step.

  --engine emulator|kvm   the emulator, deterministically in one thread (default), or the real
                          /dev/kvm through native/kvm-runner.c (built with gcc at first use)
  --compare               run both engines and print where they differ (the kernel is right)
  --json                  print one JSON object instead of text
  -h, --help              this help

"Not comparable here": the real kernel can only check scenarios whose write path ("path") is
the one this host's KVM really uses. On a host that emulates every guest instruction (every
store logged), a "fault" scenario — the hardware fault path, one entry per page until reset —
is not run on the kernel, and is never reported as a match.

Exit status: 0 ran (with --compare: the engines agree), 1 the engines differ or the kernel run
failed, 2 bad input (unreadable or invalid scenario, bad option), 3 not comparable here or
/dev/kvm unavailable.`;

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

/** Exit status when the kernel cannot judge the scenario here. */
const EXIT_NOT_COMPARED = 3;

// ---- input ----

function readScenarioFile(file: string, param: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(param, file, 'ENOENT', `cannot read the scenario: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(param, file, 'EINVAL', `not JSON: ${(e as Error).message}`);
  }
  try {
    return parseScenario(json);
  } catch (e) {
    throw new ConfigError(param, file, 'EINVAL', (e as Error).message);
  }
}

/** The emulator's results; a scenario it cannot run as written is bad input. */
/** A broken scenario is bad input: EINVAL naming the file. */
function asConfigError(e: unknown, file: string): unknown {
  return e instanceof ScenarioError ? new ConfigError('scenario', file, 'EINVAL', e.message) : e;
}

function emulate(s: Scenario, file: string): StepResult[] {
  try {
    return runScenarioOnEmulator(s);
  } catch (e) {
    throw asConfigError(e, file);
  }
}

async function compareOrConfigError(s: Scenario, file: string): Promise<Comparison> {
  try {
    return await compareEngines(s);
  } catch (e) {
    throw asConfigError(e, file);
  }
}

// ---- text output ----

/** 0,1,2,5,7,8,9 → "0-2 5 7-9". */
function ranges(ns: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(j === i ? `${ns[i]}` : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(' ');
}

/** Entries as slot:offset, consecutive offsets of one slot as slot:a-b. */
function entryList(entries: readonly { slot: number; offset: number | string }[]): string {
  const out: string[] = [];
  for (let i = 0; i < entries.length; ) {
    const e = entries[i]!;
    let j = i;
    if (typeof e.offset === 'number') {
      while (j + 1 < entries.length) {
        const n = entries[j + 1]!;
        const cur = entries[j]!.offset;
        if (n.slot !== e.slot || typeof n.offset !== 'number' || typeof cur !== 'number' || n.offset !== cur + 1) break;
        j++;
      }
    }
    out.push(j === i ? `${e.slot}:${e.offset}` : `${e.slot}:${e.offset}-${entries[j]!.offset}`);
    i = j + 1;
  }
  return out.join(' ');
}

function formatResult(r: StepResult): string {
  if ('errno' in r) return r.errno;
  const parts: string[] = [];
  if (r.exit !== undefined) parts.push(`exit ${r.exit}`);
  if (r.count !== undefined) parts.push(`count ${r.count}`);
  if (r.value !== undefined) parts.push(`value ${r.value}`);
  if (r.pages !== undefined) parts.push(`pages (${r.pages.length})${r.pages.length ? `: ${ranges(r.pages)}` : ''}`);
  if (r.entries !== undefined) parts.push(`entries (${r.entries.length})${r.entries.length ? `: ${entryList(r.entries)}` : ''}`);
  if (r.entry !== undefined) parts.push(`entry flags ${r.entry.flags} slot ${r.entry.slot} offset ${r.entry.offset}`);
  return parts.length ? parts.join(', ') : 'ok';
}

function formatStep(st: Step): string {
  const slot = (s: number, as: number): string => (as ? `slot ${s} as ${as}` : `slot ${s}`);
  switch (st.op) {
    case 'write':
      return `write vcpu ${st.vcpu} ${slot(st.slot, st.asId)} pages ${ranges(st.pages)}${st.storesPerPage > 1 ? ` x${st.storesPerPage}` : ''}${st.exitEach ? ' exitEach' : ''}`;
    case 'read':
      return `read vcpu ${st.vcpu} ${slot(st.slot, st.asId)} pages ${ranges(st.pages)}${st.exitEach ? ' exitEach' : ''}`;
    case 'run':
      return `run vcpu ${st.vcpu}${st.stopOnIo ? ' stopOnIo' : ''}`;
    case 'harvest':
      return `harvest vcpu ${st.vcpu}${st.max !== undefined ? ` max ${st.max}` : ''}${st.flagsValue !== 2 ? ` flags ${st.flagsValue}` : ''}`;
    case 'reset':
      return 'reset';
    case 'getDirtyLog':
      return `getDirtyLog ${slot(st.slot, st.asId)}${st.nullBitmap ? ' NULL' : ''}`;
    case 'clearDirtyLog':
      return `clearDirtyLog ${slot(st.slot, st.asId)} first ${st.first} num ${st.num}${st.pages.length ? ` pages ${ranges(st.pages)}` : ''}${st.nullBitmap ? ' NULL' : ''}`;
    case 'setMemslot':
      return `setMemslot ${slot(st.slot, st.asId)} ${st.delete ? 'delete' : st.logDirty ? 'log on' : 'log off'}`;
    case 'enableCap':
      return `enableCap ${st.cap} ${st.bytes !== undefined ? st.bytes : (st.flags ?? 0)}${st.capFlags ? ` capFlags ${st.capFlags}` : ''}`;
    case 'createVcpu':
      return 'createVcpu';
    case 'writeEntry':
      return `writeEntry vcpu ${st.vcpu} [${st.index}]${st.flags !== undefined ? ` flags ${st.flags}` : ''}${st.slot !== undefined ? ` slot ${st.slot}` : ''}${st.offset !== undefined ? ` offset ${st.offset}` : ''}`;
    case 'readEntry':
      return `readEntry vcpu ${st.vcpu} [${st.index}]`;
    case 'checkExtension':
      return `checkExtension ${st.cap}`;
    case 'mmapRing':
      return `mmapRing vcpu ${st.vcpu} ${st.shared ? 'shared' : 'private'} ${st.write ? 'rw' : 'ro'}${st.exec ? ' exec' : ''}`;
  }
}

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

function stepLines(s: Scenario, results: readonly StepResult[]): string[] {
  const descs = s.steps.map((st) => clip(formatStep(st), 48));
  const w = Math.max(4, ...descs.map((d) => d.length));
  const iw = String(s.steps.length - 1).length;
  return results.map((r, i) => `  ${String(i).padStart(iw)}  ${(descs[i] ?? '').padEnd(w)}  ${formatResult(r)}`);
}

function header(s: Scenario, file: string): string {
  return `scenario: ${s.name} (${file}), path ${s.path}`;
}

function kernelVerdict(k: KernelOutcome, differences: readonly string[]): string {
  switch (k.kind) {
    case 'results':
      return differences.length === 0 ? 'match' : 'DIFFER';
    case 'notComparable':
      return 'not comparable';
    case 'unavailable':
      return `kvm unavailable: ${k.reason}`;
    case 'failed':
      return `kvm run FAILED: ${k.reason.split('\n')[0]}`;
  }
}

// ---- replay ----

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      engine: { type: 'string' },
      compare: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(REPLAY_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new ConfigError('scenario', positionals.join(' ') || '(none)', 'EINVAL', 'give exactly one scenario file');
  }
  const file = positionals[0]!;
  const engine = values.engine ?? 'emulator';
  if (engine !== 'emulator' && engine !== 'kvm') {
    throw new ConfigError('--engine', engine, 'EINVAL', 'the engine must be emulator or kvm');
  }
  if (values.compare && values.engine !== undefined) {
    throw new ConfigError('--engine', engine, 'EINVAL', '--compare runs both engines; leave --engine out');
  }
  const json = values.json === true;
  const s = readScenarioFile(file, 'scenario');

  if (values.compare) {
    const { emulator, kernel, differences } = await compareOrConfigError(s, file);
    const verdict = kernelVerdict(kernel, differences);
    const status = kernel.kind === 'results' ? (differences.length === 0 ? 0 : 1) : kernel.kind === 'failed' ? 1 : EXIT_NOT_COMPARED;
    if (json) {
      const out = {
        scenario: s.name,
        file,
        path: s.path,
        match: status === 0,
        kernel: kernel.kind === 'results' ? (differences.length === 0 ? 'match' : 'differ') : kernel.kind,
        ...(kernel.kind !== 'results' ? { reason: kernel.reason } : {}),
        differences,
        ...(kernel.kind === 'results' ? { kernelAttempts: kernel.attempts ?? 1 } : {}),
        emulator,
        kvm: kernel.kind === 'results' ? kernel.results : null,
      };
      console.log(JSON.stringify(out));
      return status;
    }
    console.log(header(s, file));
    if (kernel.kind === 'results') {
      if (differences.length === 0) {
        const reruns = (kernel.attempts ?? 1) > 1 ? `; the kernel needed ${kernel.attempts} runs: host timing moved an exit` : '';
        console.log(`emulator vs kernel: match (${s.steps.length} steps agree${reruns})`);
      } else {
        console.log(`emulator vs kernel: DIFFER in ${differences.length} of ${s.steps.length} steps (expected = the real kernel, got = the emulator)`);
        for (const d of differences) console.log(`  ${d}`);
      }
    } else if (kernel.kind === 'notComparable') {
      console.log(`emulator vs kernel: ${kernel.reason}`);
    } else {
      console.log(`emulator vs kernel: ${verdict}`);
      if (kernel.kind === 'failed' && kernel.reason.includes('\n')) console.error(kernel.reason);
    }
    return status;
  }

  let results: StepResult[];
  if (engine === 'emulator') {
    results = emulate(s, file);
  } else {
    const kernel = await runOnKernel(s);
    if (kernel.kind !== 'results') {
      const status = kernel.kind === 'failed' ? 1 : EXIT_NOT_COMPARED;
      const reason = kernel.kind === 'unavailable' ? `kvm unavailable: ${kernel.reason}` : kernel.reason;
      if (json) console.log(JSON.stringify({ scenario: s.name, file, path: s.path, engine, results: null, [kernel.kind]: kernel.reason }));
      else {
        console.log(header(s, file));
        console.log(kernel.kind === 'failed' ? `kvm run FAILED: ${reason}` : reason);
      }
      return status;
    }
    results = kernel.results;
  }
  if (json) {
    console.log(JSON.stringify({ scenario: s.name, file, path: s.path, engine, results }));
    return 0;
  }
  console.log(`${header(s, file)}, engine ${engine}`);
  for (const line of stepLines(s, results)) console.log(line);
  return 0;
}

// ---- conformance ----

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
  const failed = rows.filter(rowFails);
  const count = (k: ConformanceRow['kernel']): number => rows.filter((r) => r.kernel === k).length;

  if (values.json) {
    console.log(JSON.stringify({ ok: failed.length === 0, dir, kvm: host, scenarios: rows }));
    return failed.length === 0 ? 0 : 1;
  }
  const head = ['scenario', 'path', 'emulator vs expected', 'emulator vs kernel'];
  const cells = rows.map((r) => [r.file.replace(/\.json$/, ''), r.path, expectedVerdict(r), kernelColumn(r)]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => (c === 3 ? 0 : row[c]!.length))));
  const line = (row: readonly string[]): string => row.map((cell, c) => (c === 3 ? cell : cell.padEnd(widths[c]!))).join('  ');
  console.log(`conformance: ${rows.length} scenarios in ${dir}`);
  console.log(
    host.available
      ? `kernel: /dev/kvm, this host's KVM runs guests ${host.execution === 'emulated' ? 'by emulating every instruction (fault-path scenarios are not comparable here)' : 'natively (emulated-path scenarios with guest accesses are not comparable here)'}`
      : `kernel: kvm unavailable: ${host.reason ?? ''}`,
  );
  console.log('');
  console.log(line(head));
  console.log(line(widths.map((w, c) => '-'.repeat(c === 3 ? head[3]!.length : w))));
  for (const row of cells) console.log(line(row));
  for (const r of rows) {
    const lines = [
      ...r.expectedDifferences.map((d) => `emulator vs expected: ${d}`),
      ...r.kernelDifferences.map((d) => `emulator vs kernel (expected = kernel, got = emulator): ${d}`),
      ...(r.kernel === 'failed' ? [`kernel run failed: ${r.kernelReason ?? ''}`] : []),
    ];
    if (lines.length === 0) continue;
    console.log(`\n${r.file}:`);
    for (const l of lines) console.log(`  ${l}`);
  }
  console.log('');
  const expMatch = rows.filter((r) => r.expected === 'match').length;
  console.log(
    `${failed.length === 0 ? 'OK' : 'FAILED'}: emulator matches the expectation in ${expMatch} of ${rows.length}; ` +
      `kernel: ${count('match')} match, ${count('differ')} differ, ${count('notComparable')} not comparable here` +
      `${count('unavailable') ? `, ${count('unavailable')} kvm unavailable` : ''}${count('failed') ? `, ${count('failed')} failed` : ''}`,
  );
  return failed.length === 0 ? 0 : 1;
}
