/**
 * The real-kernel engine of the fidelity feature: runs a `Scenario` on /dev/kvm through the
 * small native program native/kvm-runner.c, which this module compiles with the machine's gcc
 * into .build/native/ at first use. JSON stays on this side: kvm-runner-protocol.ts compiles a
 * scenario into the runner's line-based command script and turns the runner's one-line answers
 * back into `StepResult`s; this module checks the host, builds the runner and runs it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, constants as fsConstants } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileScenario, interpretOutput, scriptOf } from './kvm-runner-protocol.js';
import { RUNNER_GPA_LIMIT, hasGuestAccesses, parseScenario } from './scenario.js';
import type { NotComparable, Scenario, StepResult } from './scenario.js';

const RUNNER_SOURCE = join('native', 'kvm-runner.c');
const RUNNER_BINARY = join('.build', 'native', 'kvm-runner');
/** gcc flags for the runner: optimised, with the GNU extensions its ioctl code uses, every warning. */
const GCC_FLAGS = ['-O2', '-std=gnu11', '-Wall', '-Wextra'];
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
  const r = spawnSync('gcc', [...GCC_FLAGS, '-o', tmp, src], { encoding: 'utf8' });
  if (r.error) throw new Error(`kvm engine: cannot run gcc: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kvm engine: gcc failed to build ${src}:\n${r.stderr}`);
  renameSync(tmp, bin);
  return bin;
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

let probeCache: 'native' | 'emulated' | undefined;

/** Stores the probe makes to one page: each is logged under emulation, only the first faults natively. */
const PROBE_STORES = 2;

const PROBE_SCENARIO = {
  name: 'host probe: two stores to one logged page',
  path: 'emulated',
  vm: { ring: { bytes: 4096, acqRel: false } },
  memslots: [{ slot: 1, asId: 0, gpa: RUNNER_GPA_LIMIT, pages: 16, logDirty: true }],
  vcpus: 1,
  steps: [
    { op: 'write', vcpu: 0, slot: 1, pages: [3], storesPerPage: PROBE_STORES, exitEach: false },
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
  probeCache ??= executionOf(probeEntries());
  return probeCache;
}

/** Runs the probe scenario; the number of entries its stores pushed. */
function probeEntries(): number {
  const avail = kvmAvailable();
  if (!avail.ok) throw new Error(`kvm engine: cannot probe: ${avail.reason}`);
  const bin = buildKvmRunner();
  const s = parseScenario(PROBE_SCENARIO);
  const compiled = compileScenario(s);
  const r = spawnSync(bin, [], { input: scriptOf(compiled), encoding: 'utf8', timeout: DEFAULT_TIMEOUT_MS });
  if (r.error) throw new Error(`kvm engine: probe failed: ${r.error.message}`);
  const results = interpretOutput(s, compiled, r.stdout, r.stderr);
  const [, run, harvest] = results;
  if (!run || !('rc' in run) || run.exit !== 'hlt' || !harvest || !('rc' in harvest) || !harvest.entries) {
    throw new Error(`kvm engine: unexpected probe results ${JSON.stringify(results)}`);
  }
  return harvest.entries.length;
}

function executionOf(entries: number): 'native' | 'emulated' {
  if (entries === PROBE_STORES) return 'emulated';
  if (entries === 1) return 'native';
  throw new Error(`kvm engine: probe pushed ${entries} entries for ${PROBE_STORES} stores to one page`);
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
  return interpretOutput(scenario, compiled, stdout, stderr);
}
