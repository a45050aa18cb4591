/**
 * The real-kernel engine of the fidelity feature: runs a `Scenario` on /dev/kvm through the
 * small native program native/kvm-runner.c, which this module compiles with the machine's gcc
 * into .build/native/ at first use. JSON stays on this side: a scenario is compiled into the
 * runner's line-based command script (protocol documented at the top of kvm-runner.c), and the
 * runner's one-line-per-command answers are turned back into `StepResult`s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, constants as fsConstants } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '../abi/constants.js';
import { CAP_NUMBERS, hasGuestAccesses, offsetValue, parseScenario } from './scenario.js';
import type { DirtyEntry, ExitName, Memslot, NotComparable, Scenario, Step, StepResult } from './scenario.js';

const RUNNER_SOURCE = join('native', 'kvm-runner.c');
const RUNNER_BINARY = join('.build', 'native', 'kvm-runner');
const DEFAULT_TIMEOUT_MS = 60_000;

export type KvmAvailability = { ok: true } | { ok: false; reason: string };

let rootCache: string | undefined;

/** The project root: the nearest ancestor of this module that holds native/kvm-runner.c. */
export function projectRoot(): string {
  if (rootCache !== undefined) return rootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, RUNNER_SOURCE))) return (rootCache = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`kvm engine: cannot find ${RUNNER_SOURCE} above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

let availableCache: KvmAvailability | undefined;

/**
 * Whether this machine can run scenarios on the real kernel, and if not, why. Checked once per
 * process: every comparison asks, and spawning `gcc --version` each time would cost more than
 * many scenarios do, while the answer does not change under a running process.
 */
export function kvmAvailable(): KvmAvailability {
  availableCache ??= checkKvmAvailable();
  return availableCache;
}

function checkKvmAvailable(): KvmAvailability {
  if (platform() !== 'linux') return { ok: false, reason: `not Linux (${platform()})` };
  if (arch() !== 'x64') return { ok: false, reason: `the runner's guest is x86-64 code; this machine is ${arch()}` };
  try {
    closeSync(openSync('/dev/kvm', fsConstants.O_RDWR));
  } catch (e) {
    return { ok: false, reason: `/dev/kvm cannot be opened read-write: ${(e as Error).message}` };
  }
  const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (gcc.error || gcc.status !== 0) {
    return { ok: false, reason: `gcc is not available to build the native runner: ${gcc.error?.message ?? `exit ${gcc.status}`}` };
  }
  return { ok: true };
}

/**
 * Compiles native/kvm-runner.c into .build/native/kvm-runner unless the binary is newer than the
 * source. Returns the binary's path. The build goes to a temporary name first, then is renamed,
 * so concurrent builders never run a half-written binary.
 */
export function buildKvmRunner(): string {
  const root = projectRoot();
  const src = join(root, RUNNER_SOURCE);
  const bin = join(root, RUNNER_BINARY);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync('gcc', ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-o', tmp, src], { encoding: 'utf8' });
  if (r.error) throw new Error(`kvm engine: cannot run gcc: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kvm engine: gcc failed to build ${src}:\n${r.stderr}`);
  renameSync(tmp, bin);
  return bin;
}

// ---- scenario -> command script ----

function slotField(slot: number, asId: number): number {
  return ((asId << 16) | slot) >>> 0;
}

function declared(s: Scenario, slot: number, asId: number): Memslot {
  const m = s.memslots.find((x) => x.slot === slot && x.asId === asId);
  if (!m) throw new Error(`kvm engine: slot ${slot} (asId ${asId}) is not declared`);
  return m;
}

function memslotCommand(m: Memslot, logDirty: boolean, del: boolean): string {
  return del
    ? `slot ${slotField(m.slot, m.asId)} ${m.gpa} 0 0`
    : `slot ${slotField(m.slot, m.asId)} ${m.gpa} ${m.pages} ${logDirty ? 1 : 0}`;
}

function stepCommand(s: Scenario, st: Step): string {
  switch (st.op) {
    case 'write':
    case 'read': {
      const m = declared(s, st.slot, st.asId);
      const repeat = st.op === 'write' ? st.storesPerPage : 1;
      const kind = (st.exitEach ? 1 : 0) | (st.op === 'read' ? 2 : 0);
      return `write ${st.vcpu} ${kind} ${repeat} ${st.pages.length}${st.pages.map((p) => ` ${m.gpa + p * PAGE_SIZE}`).join('')}`;
    }
    case 'run':
      return `run ${st.vcpu} ${st.stopOnIo ? 1 : 0}`;
    case 'harvest':
      return `harvest ${st.vcpu} ${st.max ?? 0xffff_ffff} ${st.flagsValue}`;
    case 'reset':
      return 'reset';
    case 'getDirtyLog':
      return `get ${slotField(st.slot, st.asId)} ${st.nullBitmap ? 1 : 0}`;
    case 'clearDirtyLog': {
      const bits = st.pages.map((p) => p - st.first);
      return `clear ${slotField(st.slot, st.asId)} ${st.first} ${st.num} ${st.nullBitmap ? 1 : 0} ${bits.length}${bits.map((b) => ` ${b}`).join('')}`;
    }
    case 'setMemslot':
      return memslotCommand(declared(s, st.slot, st.asId), st.logDirty, st.delete);
    case 'enableCap': {
      const args0 = st.bytes ?? BigInt(st.flags ?? 0);
      return `cap ${CAP_NUMBERS[st.cap]} ${args0} ${st.capFlags}`;
    }
    case 'createVcpu':
      return 'vcpu';
    case 'writeEntry':
      return `wentry ${st.vcpu} ${st.index} ${st.flags ?? '-'} ${st.slot ?? '-'} ${st.offset ?? '-'}`;
    case 'readEntry':
      return `rentry ${st.vcpu} ${st.index}`;
    case 'checkExtension':
      return `check ${CAP_NUMBERS[st.cap]}`;
    case 'mmapRing':
      // PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4
      return `mmap ${st.vcpu} ${st.shared ? 1 : 0} ${1 | (st.write ? 2 : 0) | (st.exec ? 4 : 0)}`;
  }
}

export interface CompiledScenario {
  /** Setup commands (init, caps of `vm`, memslots, vCPUs): each must answer `ok`. */
  setup: string[];
  /** One command per step, in order. */
  steps: string[];
}

/** Compiles a scenario into the runner's command script. Pure; exported for tests and debugging. */
export function compileScenario(s: Scenario): CompiledScenario {
  const maxVcpus = s.vcpus + s.steps.filter((st) => st.op === 'createVcpu').length;
  const queued = new Array<number>(Math.max(maxVcpus, 1)).fill(0);
  for (const st of s.steps) {
    if (st.op === 'write') queued[st.vcpu] = (queued[st.vcpu] ?? 0) + st.pages.length * st.storesPerPage;
    if (st.op === 'read') queued[st.vcpu] = (queued[st.vcpu] ?? 0) + st.pages.length;
  }
  const setup = [`init ${maxVcpus} ${Math.max(1, ...queued)}`];
  if (s.vm?.ring) setup.push(`cap ${s.vm.ring.acqRel ? CAP_NUMBERS.dirtyRingAcqRel : CAP_NUMBERS.dirtyRing} ${s.vm.ring.bytes} 0`);
  if (s.vm && s.vm.manualProtect !== 0) setup.push(`cap ${CAP_NUMBERS.manualProtect} ${s.vm.manualProtect} 0`);
  for (const m of s.memslots) setup.push(memslotCommand(m, m.logDirty, false));
  for (let i = 0; i < s.vcpus; i++) setup.push('vcpu');
  return { setup, steps: s.steps.map((st) => stepCommand(s, st)) };
}

// ---- runner output -> results ----

function decimal(tok: string | undefined, line: string): bigint {
  if (tok === undefined || !/^[0-9]+$/.test(tok)) throw new Error(`kvm engine: bad number in runner output: ${line}`);
  return BigInt(tok);
}

function small(tok: string | undefined, line: string): number {
  const v = decimal(tok, line);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`kvm engine: number too large in runner output: ${line}`);
  return Number(v);
}

/** Turns one runner answer into the result of `step`. Throws on `fatal` or malformed lines. */
export function parseAnswer(step: Step, line: string): StepResult {
  const t = line.split(' ');
  if (t[0] === 'err') {
    if (t.length !== 2 || !/^E[A-Z0-9]+$/.test(t[1] ?? '')) throw new Error(`kvm engine: bad runner answer: ${line}`);
    return { errno: t[1] as string };
  }
  if (t[0] !== 'ok') throw new Error(`kvm engine: runner failed at ${step.op}: ${line}`);
  const rest = t.slice(1);
  const expectLen = (n: number): void => {
    if (rest.length !== n) throw new Error(`kvm engine: unexpected answer to ${step.op}: ${line}`);
  };
  switch (step.op) {
    case 'run': {
      let exit: ExitName;
      if (rest[0] === 'other') {
        expectLen(2);
        exit = `other:${small(rest[1], line)}`;
      } else {
        expectLen(1);
        if (rest[0] !== 'hlt' && rest[0] !== 'dirty_ring_full' && rest[0] !== 'io') throw new Error(`kvm engine: bad exit: ${line}`);
        exit = rest[0];
      }
      return { rc: 0, exit };
    }
    case 'harvest': {
      const n = small(rest[0], line);
      expectLen(1 + 2 * n);
      const entries: DirtyEntry[] = [];
      for (let i = 0; i < n; i++) {
        entries.push({ slot: small(rest[1 + 2 * i], line), offset: offsetValue(decimal(rest[2 + 2 * i], line)) });
      }
      return { rc: 0, entries };
    }
    case 'reset':
      expectLen(1);
      return { rc: 0, count: small(rest[0], line) };
    case 'getDirtyLog': {
      const n = small(rest[0], line);
      expectLen(1 + n);
      return { rc: 0, pages: rest.slice(1).map((p) => small(p, line)) };
    }
    case 'readEntry':
      expectLen(3);
      return { rc: 0, entry: { flags: small(rest[0], line), slot: small(rest[1], line), offset: offsetValue(decimal(rest[2], line)) } };
    case 'checkExtension': {
      expectLen(1);
      const v = rest[0] ?? '';
      if (!/^-?[0-9]+$/.test(v)) throw new Error(`kvm engine: bad value: ${line}`);
      return { rc: 0, value: Number(v) };
    }
    default:
      expectLen(0);
      return { rc: 0 };
  }
}

function interpret(s: Scenario, compiled: CompiledScenario, stdout: string, stderr: string): StepResult[] {
  const lines = stdout.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const fail: (msg: string) => never = (msg) => {
    throw new Error(`kvm engine: scenario "${s.name}": ${msg}${stderr.trim() ? `\nrunner stderr:\n${stderr.trim()}` : ''}`);
  };
  compiled.setup.forEach((cmd, i) => {
    const ans = lines[i];
    if (ans === undefined) fail(`runner stopped during setup (${cmd.split(' ')[0]})`);
    if (ans !== 'ok') fail(`setup command "${cmd}" failed: ${ans}`);
  });
  const results: StepResult[] = [];
  s.steps.forEach((st, i) => {
    const ans = lines[compiled.setup.length + i];
    if (ans === undefined) fail(`runner stopped before step ${i} (${st.op})`);
    try {
      results.push(parseAnswer(st, ans));
    } catch (e) {
      fail(`step ${i} (${st.op}): ${(e as Error).message}`);
    }
  });
  if (lines.length !== compiled.setup.length + s.steps.length) fail(`runner printed ${lines.length} lines for ${compiled.setup.length + s.steps.length} commands`);
  return results;
}

export interface RunOptions {
  /** Kill the runner after this long (default 60 s). */
  timeoutMs?: number;
}

function execRunner(bin: string, script: string, timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`kvm engine: runner killed after ${timeoutMs} ms`));
      else resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code });
    });
    child.stdin.on('error', () => { /* the runner may exit early (fatal); its output says why */ });
    child.stdin.end(script);
  });
}

function scriptOf(c: CompiledScenario): string {
  return [...c.setup, ...c.steps].join('\n') + '\n';
}

let probeCache: 'native' | 'emulated' | undefined;

const PROBE_SCENARIO = {
  name: 'host probe: two stores to one logged page',
  path: 'emulated',
  vm: { ring: { bytes: 4096, acqRel: false } },
  memslots: [{ slot: 1, asId: 0, gpa: 1 << 30, pages: 16, logDirty: true }],
  vcpus: 1,
  steps: [
    { op: 'write', vcpu: 0, slot: 1, pages: [3], storesPerPage: 2, exitEach: false },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 0 },
  ],
};

/**
 * Whether this host's KVM executes the guest natively (stores fault once per write-protected
 * page: 2 stores to one logged page push 1 entry) or emulates every instruction (every store is
 * logged: 2 entries). Runs the runner once, synchronously, and caches the answer.
 */
export function probeKvmExecution(): 'native' | 'emulated' {
  if (probeCache) return probeCache;
  const avail = kvmAvailable();
  if (!avail.ok) throw new Error(`kvm engine: cannot probe: ${avail.reason}`);
  const bin = buildKvmRunner();
  const s = parseScenario(PROBE_SCENARIO);
  const compiled = compileScenario(s);
  const r = spawnSync(bin, [], { input: scriptOf(compiled), encoding: 'utf8', timeout: DEFAULT_TIMEOUT_MS });
  if (r.error) throw new Error(`kvm engine: probe failed: ${r.error.message}`);
  const results = interpret(s, compiled, r.stdout, r.stderr);
  const run = results[1];
  const harvest = results[2];
  if (!run || !('rc' in run) || run.exit !== 'hlt' || !harvest || !('rc' in harvest) || !harvest.entries) {
    throw new Error(`kvm engine: unexpected probe results ${JSON.stringify(results)}`);
  }
  const n = harvest.entries.length;
  if (n === 2) probeCache = 'emulated';
  else if (n === 1) probeCache = 'native';
  else throw new Error(`kvm engine: probe pushed ${n} entries for 2 stores to one page`);
  return probeCache;
}

/**
 * Why this scenario cannot be checked on this host, or undefined when it can. A "fault"
 * scenario is never comparable on an emulating host; an "emulated" scenario with guest accesses
 * is not comparable on a host that runs the guest natively.
 */
export function notComparableReason(s: Scenario, execution: 'native' | 'emulated'): string | undefined {
  if (s.path === 'fault' && execution === 'emulated') {
    return 'not comparable here: the scenario uses the hardware fault path, but this host\'s KVM emulates every guest instruction (every store is logged, no fault-path deduplication)';
  }
  if (s.path === 'emulated' && execution === 'native' && hasGuestAccesses(s)) {
    return 'not comparable here: the scenario uses the emulated-store path, but this host\'s KVM runs the guest natively (stores are deduplicated by write-protection faults)';
  }
  return undefined;
}

/** Runs a scenario on the real /dev/kvm. Throws when KVM is unavailable or the runner fails. */
export async function runScenarioOnKvm(scenario: Scenario, opts: RunOptions = {}): Promise<StepResult[] | NotComparable> {
  const avail = kvmAvailable();
  if (!avail.ok) throw new Error(`kvm engine: ${avail.reason}`);
  const why = notComparableReason(scenario, probeKvmExecution());
  if (why !== undefined) return { notComparable: why };
  const bin = buildKvmRunner();
  const compiled = compileScenario(scenario);
  const { stdout, stderr } = await execRunner(bin, scriptOf(compiled), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return interpret(scenario, compiled, stdout, stderr);
}
