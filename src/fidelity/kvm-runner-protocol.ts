/**
 * The line protocol of native/kvm-runner.c (described at the top of that file): a scenario
 * compiled into the runner's command script, and the runner's one-line answers turned back
 * into `StepResult`s. Pure: no process, no file; kvm-engine.ts runs the runner.
 */
import { PAGE_SIZE, encodeSlot } from '../abi/constants.js';
import { CAP_NUMBERS, findMemslot, offsetValue } from './scenario.js';
import type { DirtyEntry, ExitName, Memslot, OkResult, Scenario, Step, StepOf, StepResult } from './scenario.js';

/** `write` command kind bits: leave to userspace after each access; loads instead of stores. */
const ACCESS_EXIT_EACH = 1;
const ACCESS_LOAD = 2;
/** `harvest` command limit meaning "no limit": more than any ring holds. */
const HARVEST_NO_LIMIT = 0xffff_ffff;
/** mmap protection bits as the `mmap` command takes them (PROT_READ, PROT_WRITE, PROT_EXEC). */
const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;
const ERRNO_RE = /^E[A-Z0-9]+$/;
const EXITS: readonly string[] = ['hlt', 'dirty_ring_full', 'io'] satisfies ExitName[];

export interface CompiledScenario {
  /** Setup commands (init, caps of `vm`, memslots, vCPUs): each must answer `ok`. */
  setup: string[];
  /** One command per step, in order. */
  steps: string[];
}

// ---- scenario -> command script ----

function declared(s: Scenario, slot: number, asId: number): Memslot {
  const m = findMemslot(s.memslots, slot, asId);
  if (!m) throw new Error(`kvm engine: slot ${slot} (asId ${asId}) is not declared`);
  return m;
}

const flag = (b: boolean): number => (b ? 1 : 0);

function memslotCommand(m: Memslot, logDirty: boolean, del: boolean): string {
  const slot = encodeSlot(m.asId, m.slot);
  return del ? `slot ${slot} ${m.gpa} 0 0` : `slot ${slot} ${m.gpa} ${m.pages} ${flag(logDirty)}`;
}

function accessCommand(s: Scenario, st: StepOf<'write' | 'read'>): string {
  const m = declared(s, st.slot, st.asId);
  const repeat = st.op === 'write' ? st.storesPerPage : 1;
  const kind = (st.exitEach ? ACCESS_EXIT_EACH : 0) | (st.op === 'read' ? ACCESS_LOAD : 0);
  return `write ${st.vcpu} ${kind} ${repeat} ${st.pages.length}${st.pages.map((p) => ` ${m.gpa + p * PAGE_SIZE}`).join('')}`;
}

function clearCommand(st: StepOf<'clearDirtyLog'>): string {
  const bits = st.pages.map((p) => p - st.first);
  const slot = encodeSlot(st.asId, st.slot);
  return `clear ${slot} ${st.first} ${st.num} ${flag(st.nullBitmap)} ${bits.length}${bits.map((b) => ` ${b}`).join('')}`;
}

function stepCommand(s: Scenario, st: Step): string {
  switch (st.op) {
    case 'write':
    case 'read':
      return accessCommand(s, st);
    case 'run':
      return `run ${st.vcpu} ${flag(st.stopOnIo)}`;
    case 'harvest':
      return `harvest ${st.vcpu} ${st.max ?? HARVEST_NO_LIMIT} ${st.flagsValue}`;
    case 'reset':
      return 'reset';
    case 'getDirtyLog':
      return `get ${encodeSlot(st.asId, st.slot)} ${flag(st.nullBitmap)}`;
    case 'clearDirtyLog':
      return clearCommand(st);
    case 'setMemslot':
      return memslotCommand(declared(s, st.slot, st.asId), st.logDirty, st.delete);
    case 'enableCap':
      return `cap ${CAP_NUMBERS[st.cap]} ${st.bytes ?? BigInt(st.flags ?? 0)} ${st.capFlags}`;
    case 'createVcpu':
      return 'vcpu';
    case 'writeEntry':
      return `wentry ${st.vcpu} ${st.index} ${st.flags ?? '-'} ${st.slot ?? '-'} ${st.offset ?? '-'}`;
    case 'readEntry':
      return `rentry ${st.vcpu} ${st.index}`;
    case 'checkExtension':
      return `check ${CAP_NUMBERS[st.cap]}`;
    case 'mmapRing':
      return `mmap ${st.vcpu} ${flag(st.shared)} ${PROT_READ | (st.write ? PROT_WRITE : 0) | (st.exec ? PROT_EXEC : 0)}`;
  }
}

/** The most accesses any one vCPU queues over the scenario: the runner sizes its queues by it. */
function largestQueue(s: Scenario, vcpus: number): number {
  const queued = new Array<number>(Math.max(vcpus, 1)).fill(0);
  for (const st of s.steps) {
    if (st.op === 'write') queued[st.vcpu] = (queued[st.vcpu] ?? 0) + st.pages.length * st.storesPerPage;
    if (st.op === 'read') queued[st.vcpu] = (queued[st.vcpu] ?? 0) + st.pages.length;
  }
  return Math.max(1, ...queued);
}

/** Setup in the contract's order: init, the VM's caps, the memslots, the vCPUs. */
function setupCommands(s: Scenario): string[] {
  const maxVcpus = s.vcpus + s.steps.filter((st) => st.op === 'createVcpu').length;
  const setup = [`init ${maxVcpus} ${largestQueue(s, maxVcpus)}`];
  if (s.vm?.ring) setup.push(`cap ${s.vm.ring.acqRel ? CAP_NUMBERS.dirtyRingAcqRel : CAP_NUMBERS.dirtyRing} ${s.vm.ring.bytes} 0`);
  if (s.vm && s.vm.manualProtect !== 0) setup.push(`cap ${CAP_NUMBERS.manualProtect} ${s.vm.manualProtect} 0`);
  for (const m of s.memslots) setup.push(memslotCommand(m, m.logDirty, false));
  for (let i = 0; i < s.vcpus; i++) setup.push('vcpu');
  return setup;
}

/** Compiles a scenario into the runner's command script. Pure; exported for tests and debugging. */
export function compileScenario(s: Scenario): CompiledScenario {
  return { setup: setupCommands(s), steps: s.steps.map((st) => stepCommand(s, st)) };
}

/** The script as the runner reads it on stdin: one command per line. */
export function scriptOf(c: CompiledScenario): string {
  return [...c.setup, ...c.steps].join('\n') + '\n';
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

/** The values of one `ok` answer, with the line they came from for errors. */
class AnswerValues {
  constructor(readonly step: Step, readonly values: readonly string[], readonly line: string) {}
  expectLength(n: number): void {
    if (this.values.length !== n) throw new Error(`kvm engine: unexpected answer to ${this.step.op}: ${this.line}`);
  }
  small(i: number): number {
    return small(this.values[i], this.line);
  }
  decimal(i: number): bigint {
    return decimal(this.values[i], this.line);
  }
}

/** `ok hlt | dirty_ring_full | io | other <exit_reason>`. */
function runAnswer(a: AnswerValues): OkResult {
  if (a.values[0] === 'other') {
    a.expectLength(2);
    return { rc: 0, exit: `other:${a.small(1)}` };
  }
  a.expectLength(1);
  const exit = a.values[0] ?? '';
  if (!EXITS.includes(exit)) throw new Error(`kvm engine: bad exit: ${a.line}`);
  return { rc: 0, exit: exit as ExitName };
}

/** `ok <n> <slot_1> <offset_1> ... <slot_n> <offset_n>`. */
function harvestAnswer(a: AnswerValues): OkResult {
  const n = a.small(0);
  a.expectLength(1 + 2 * n);
  const entries: DirtyEntry[] = [];
  for (let i = 0; i < n; i++) entries.push({ slot: a.small(1 + 2 * i), offset: offsetValue(a.decimal(2 + 2 * i)) });
  return { rc: 0, entries };
}

/** `ok <n> <page_1> ... <page_n>`. */
function getDirtyLogAnswer(a: AnswerValues): OkResult {
  const n = a.small(0);
  a.expectLength(1 + n);
  return { rc: 0, pages: a.values.slice(1).map((p) => small(p, a.line)) };
}

/** `ok <value>`: a signed value. */
function checkExtensionAnswer(a: AnswerValues): OkResult {
  a.expectLength(1);
  const v = a.values[0] ?? '';
  if (!/^-?[0-9]+$/.test(v)) throw new Error(`kvm engine: bad value: ${a.line}`);
  return { rc: 0, value: Number(v) };
}

function okAnswer(a: AnswerValues): OkResult {
  switch (a.step.op) {
    case 'run':
      return runAnswer(a);
    case 'harvest':
      return harvestAnswer(a);
    case 'reset':
      a.expectLength(1);
      return { rc: 0, count: a.small(0) };
    case 'getDirtyLog':
      return getDirtyLogAnswer(a);
    case 'readEntry':
      a.expectLength(3);
      return { rc: 0, entry: { flags: a.small(0), slot: a.small(1), offset: offsetValue(a.decimal(2)) } };
    case 'checkExtension':
      return checkExtensionAnswer(a);
    default:
      a.expectLength(0);
      return { rc: 0 };
  }
}

/** Turns one runner answer into the result of `step`. Throws on `fatal` or malformed lines. */
export function parseAnswer(step: Step, line: string): StepResult {
  const t = line.split(' ');
  if (t[0] === 'err') {
    if (t.length !== 2 || !ERRNO_RE.test(t[1] ?? '')) throw new Error(`kvm engine: bad runner answer: ${line}`);
    return { errno: t[1] as string };
  }
  if (t[0] !== 'ok') throw new Error(`kvm engine: runner failed at ${step.op}: ${line}`);
  return okAnswer(new AnswerValues(step, t.slice(1), line));
}

/**
 * The results of a whole run: every setup command must have answered `ok`, then one answer per
 * step. Throws, naming the scenario and quoting the runner's stderr, when the output falls short.
 */
export function interpretOutput(s: Scenario, compiled: CompiledScenario, stdout: string, stderr: string): StepResult[] {
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
  const results = s.steps.map((st, i) => {
    const ans = lines[compiled.setup.length + i];
    if (ans === undefined) fail(`runner stopped before step ${i} (${st.op})`);
    try {
      return parseAnswer(st, ans);
    } catch (e) {
      return fail(`step ${i} (${st.op}): ${(e as Error).message}`);
    }
  });
  const commands = compiled.setup.length + s.steps.length;
  if (lines.length !== commands) fail(`runner printed ${lines.length} lines for ${commands} commands`);
  return results;
}
