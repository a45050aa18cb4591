/**
 * Scenario format and result format of the fidelity feature (issue 7). This is a contract
 * between the emulator engine and the real-kernel engine (`kvm-engine.ts`): both take a
 * `Scenario` from `parseScenario` and return one `StepResult` per step, compared with deep
 * equality after `canonicalResults`. No Node imports here: the module also runs in a browser.
 * The checked-in suite is test/scenarios (NAME.json, its expected results in NAME.expected.json).
 *
 * ## Order of setup
 * 1. `vm.ring` (KVM_ENABLE_CAP 192, or 223 with `acqRel`), then `vm.manualProtect` (cap 168 with
 *    args[0] = the value) when non-zero. `vm` may be omitted and the caps enabled by steps.
 * 2. `memslots`, in order (KVM_SET_USER_MEMORY_REGION, flag LOG_DIRTY_PAGES if `logDirty`).
 * 3. `vcpus` vCPUs, ids 0..vcpus-1; each gets a ring when a ring size is set.
 * A failure during setup is not a result: the engine throws. Then the steps, one result each.
 *
 * ## The guest, `write` and `read`
 * Every vCPU owns a FIFO queue of guest accesses. `write` appends, for each page of `pages` in
 * the given order, `storesPerPage` one-byte stores to the start of that page of memslot `slot`
 * (address space `asId`); `read` appends one load per page. `exitEach: true` makes the guest
 * leave to userspace (an I/O exit) right after each access of that step. Queueing does not run
 * anything; its result is `{ "rc": 0 }`.
 *
 * ## How `run` treats exits (both engines must do exactly this)
 * `run { vcpu, stopOnIo? }` enters the vCPU (KVM_RUN) and ends with the first of:
 * - `exit: "dirty_ring_full"` — KVM_EXIT_DIRTY_RING_FULL. The kernel checks its soft-full request
 *   on every entry: entering a vCPU whose ring has `used = dirty_index - reset_index >= size - 64`
 *   exits at once without performing any access (so a re-run without a reset exits again, with
 *   no new entries). After an access made with `exitEach`, the guest has left to userspace, so
 *   the re-entry that follows checks the request: the run ends exactly after the push that made
 *   `used` reach `size - 64`; that access is complete, its I/O exit already taken, and the next
 *   `run` (after a reset) continues with the following access.
 * - `exit: "io"` — only with `stopOnIo: true`: the first I/O exit (after an `exitEach` access).
 *   Without `stopOnIo`, I/O exits are NOT step boundaries: the runner re-enters at once (but the
 *   re-entry is where the soft-full check above happens).
 * - `exit: "hlt"` — the queue is drained: every access queued so far has been performed.
 * Accesses queued without `exitEach` are performed with no return to userspace in between.
 * On hardware KVM the soft-full check still happens before the next guest entry after the
 * faulting store; on an instruction-emulating host (this machine's PVM) it can come 0–56 pushes
 * late. So a scenario meant to be compared must not let `used` reach `size - 64` during a run
 * of accesses without `exitEach`.
 * Other exits (`"other:<n>"`, e.g. a store to a deleted memslot) are outside the contract.
 *
 * ## Harvest and raw ring access
 * `harvest { vcpu, max?, flagsValue? }`: from this vCPU's userspace fetch index (free-running,
 * starts at 0, moved only by harvest): while fewer than `max` (default: no limit) were taken and
 * the entry's flags are exactly 1 (DIRTY alone; loaded with acquire), record `{slot, offset}`,
 * store `flagsValue` (default 2) with release, advance. `writeEntry { vcpu, index, flags?, slot?,
 * offset? }` writes the given fields of the entry at `index mod ring entries` as a misbehaving
 * userspace would (slot/offset plain, flags last with release), without moving the fetch index.
 * `readEntry { vcpu, index }` returns `entry: {flags, slot, offset}` at `index mod entries`.
 * These three act on userspace memory only; using them on a vCPU without a ring is a scenario
 * error (the engine throws).
 * `mmapRing { vcpu, shared?, write?, exec? }` maps the vCPU's ring once more (defaults: shared,
 * read/write, not executable) and unmaps it; the result is the mmap's `rc` or `errno`. Also a
 * scenario error on a vCPU without a ring.
 *
 * ## Results
 * `{ "rc": 0 }` or `{ "errno": "EINVAL" }`, plus per op: `run` → `exit`; `harvest` →
 * `entries: [{slot, offset}]` (slot = (as_id << 16) | id, as stored in the ring); `reset` →
 * `count`; `getDirtyLog` → `pages` (every set bit of the returned bitmap, ascending, padding bits
 * included); `readEntry` → `entry`; `checkExtension` → `value`. An offset above 2^53 − 1 is given
 * as a decimal string. `getDirtyLog`/`clearDirtyLog`: `slot` is the id, `asId` the address space
 * (the ioctl gets `(asId << 16) | slot`); `clearDirtyLog.pages` are slot page numbers, bit i of
 * the user bitmap standing for page `first + i`; the bitmap has max(1, ceil(num/64)) words.
 * `nullBitmap: true` passes a NULL pointer (EFAULT cases).
 *
 * ## Path
 * `path` ("fault" | "emulated", default "fault") picks the write path for the whole scenario:
 * "fault" = hardware KVM (a store pushes only when the page is write-protected, once per page
 * until reset/CLEAR), "emulated" = every store is logged (kvm_vcpu_write_guest). A real kernel
 * whose guest is instruction-emulated can only check "emulated" scenarios.
 *
 * ## Free text
 * `description` (top level) and `note` (on any step) are optional strings that no engine reads.
 * Every other unknown field is an error, so a misspelt name never passes silently.
 *
 * ## Reserved by the kvm runner
 * Memslot id 32763 and guest-physical addresses below 1 GiB hold the runner's guest code, page
 * tables and queues (never dirty-logged); scenarios' memslots must avoid them.
 */

export type WritePath = 'fault' | 'emulated';
export type CapName = 'dirtyRing' | 'dirtyRingAcqRel' | 'manualProtect' | 'dirtyRingWithBitmap';

export const CAP_NUMBERS: Readonly<Record<CapName, number>> = {
  dirtyRing: 192,
  dirtyRingAcqRel: 223,
  manualProtect: 168,
  dirtyRingWithBitmap: 225,
};

export const PAGE_SIZE = 4096;
/** Memslot id the kvm runner keeps for its own memory. */
export const RUNNER_SLOT = 32763;
/** Guest-physical addresses below this belong to the kvm runner. */
export const RUNNER_GPA_LIMIT = 1 << 30;
/** Upper bound of guest-physical addresses a scenario may use (48-bit physical width). */
export const GPA_LIMIT = 2 ** 48;
export const MAX_VCPUS = 16;
export const MAX_SLOT_PAGES = 1 << 21;
const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

export interface Memslot {
  slot: number;
  asId: number;
  /** Guest-physical base address, page aligned. */
  gpa: number;
  pages: number;
  logDirty: boolean;
}

export interface VmConfig {
  /** `bytes` is the u64 args[0] of the enable (the kernel truncates it to u32). */
  ring?: { bytes: bigint; acqRel: boolean };
  /** args[0] of KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2; 0 = not enabled. */
  manualProtect: number;
}

export interface WriteStep { op: 'write'; vcpu: number; slot: number; asId: number; pages: number[]; storesPerPage: number; exitEach: boolean }
export interface ReadStep { op: 'read'; vcpu: number; slot: number; asId: number; pages: number[]; exitEach: boolean }
export interface RunStep { op: 'run'; vcpu: number; stopOnIo: boolean }
/** `max` undefined = no limit. */
export interface HarvestStep { op: 'harvest'; vcpu: number; max?: number; flagsValue: number }
export interface ResetStep { op: 'reset' }
export interface GetDirtyLogStep { op: 'getDirtyLog'; slot: number; asId: number; nullBitmap: boolean }
export interface ClearDirtyLogStep { op: 'clearDirtyLog'; slot: number; asId: number; first: number; num: number; pages: number[]; nullBitmap: boolean }
/** Re-registers a declared memslot with or without the log flag, or deletes it. */
export interface SetMemslotStep { op: 'setMemslot'; slot: number; asId: number; logDirty: boolean; delete: boolean }
/** `bytes` (ring caps) and `flags` (manual protect, ring-with-bitmap) both go to args[0]. */
export interface EnableCapStep { op: 'enableCap'; cap: CapName; bytes?: bigint; flags?: number; capFlags: number }
export interface CreateVcpuStep { op: 'createVcpu' }
export interface WriteEntryStep { op: 'writeEntry'; vcpu: number; index: number; flags?: number; slot?: number; offset?: bigint }
export interface ReadEntryStep { op: 'readEntry'; vcpu: number; index: number }
export interface CheckExtensionStep { op: 'checkExtension'; cap: CapName }
export interface MmapRingStep { op: 'mmapRing'; vcpu: number; shared: boolean; write: boolean; exec: boolean }

export type Step =
  | WriteStep | ReadStep | RunStep | HarvestStep | ResetStep | GetDirtyLogStep | ClearDirtyLogStep
  | SetMemslotStep | EnableCapStep | CreateVcpuStep | WriteEntryStep | ReadEntryStep | CheckExtensionStep
  | MmapRingStep;
export type StepOp = Step['op'];

export interface Scenario {
  name: string;
  description?: string;
  path: WritePath;
  vm?: VmConfig;
  memslots: Memslot[];
  vcpus: number;
  steps: Step[];
}

// ---- results ----

export type ExitName = 'hlt' | 'dirty_ring_full' | 'io' | `other:${number}`;
/** `offset` is a decimal string when above Number.MAX_SAFE_INTEGER. */
export interface DirtyEntry { slot: number; offset: number | string }
export interface RawEntry { flags: number; slot: number; offset: number | string }

export interface OkResult {
  rc: 0;
  exit?: ExitName;
  entries?: DirtyEntry[];
  count?: number;
  pages?: number[];
  value?: number;
  entry?: RawEntry;
}
export interface ErrResult { errno: string }
export type StepResult = OkResult | ErrResult;
export interface NotComparable { notComparable: string }

export function isNotComparable(r: StepResult[] | NotComparable): r is NotComparable {
  return !Array.isArray(r);
}

/** Offsets as results carry them: a number when it is a safe integer, else a decimal string. */
export function offsetValue(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

// ---- the parser ----

type Json = unknown;

class Field {
  constructor(readonly path: string) {}
  at(key: string | number): Field {
    return new Field(typeof key === 'number' ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key);
  }
  error(msg: string): Error {
    return new Error(`scenario: ${this.path || '(root)'}: ${msg}`);
  }
  fail(msg: string): never {
    throw this.error(msg);
  }
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: Json, f: Field, allowed: readonly string[]): Record<string, Json> {
  if (!isObject(v)) f.fail('expected an object');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) f.at(k).fail(`unknown field (allowed: ${allowed.join(', ')})`);
  return v;
}

function int(v: Json, f: Field, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) f.fail(`expected an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) f.fail(`${v} is out of range [${min}, ${max}]`);
  return v;
}

function optInt(v: Json, f: Field, min: number, max: number, dflt: number): number {
  return v === undefined ? dflt : int(v, f, min, max);
}

function bool(v: Json, f: Field): boolean {
  if (typeof v !== 'boolean') f.fail(`expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optBool(v: Json, f: Field, dflt: boolean): boolean {
  return v === undefined ? dflt : bool(v, f);
}

/** A u64: a non-negative safe integer, or a decimal string for larger values. */
function u64(v: Json, f: Field): bigint {
  let b: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) f.fail(`expected a non-negative safe integer or a decimal string, got ${v}`);
    b = BigInt(v);
  } else if (typeof v === 'string') {
    if (!/^(0|[1-9][0-9]*)$/.test(v)) f.fail(`expected a decimal string, got ${JSON.stringify(v)}`);
    b = BigInt(v);
  } else f.fail(`expected a number or a decimal string, got ${JSON.stringify(v)}`);
  if (b > U64_MAX) f.fail('does not fit in 64 bits');
  return b;
}

function str(v: Json, f: Field): string {
  if (typeof v !== 'string' || v.length === 0) f.fail('expected a non-empty string');
  return v;
}

function capName(v: Json, f: Field): CapName {
  if (typeof v !== 'string' || !Object.hasOwn(CAP_NUMBERS, v)) {
    f.fail(`expected one of ${Object.keys(CAP_NUMBERS).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as CapName;
}

function pageSet(v: Json, f: Field, limit: number, what: string): number[] {
  if (Array.isArray(v)) {
    return v.map((p, i) => int(p, f.at(i), 0, limit - 1));
  }
  if (isObject(v)) {
    const o = obj(v, f, ['from', 'count']);
    const from = int(o.from, f.at('from'), 0, limit - 1);
    const count = int(o.count, f.at('count'), 0, limit - from);
    return Array.from({ length: count }, (_, i) => from + i);
  }
  return f.fail(`expected an array of page numbers or {from, count} within ${what}`);
}

const STEP_FIELDS: Readonly<Record<StepOp, readonly string[]>> = {
  write: ['vcpu', 'slot', 'asId', 'pages', 'storesPerPage', 'exitEach'],
  read: ['vcpu', 'slot', 'asId', 'pages', 'exitEach'],
  run: ['vcpu', 'stopOnIo'],
  harvest: ['vcpu', 'max', 'flagsValue'],
  reset: [],
  getDirtyLog: ['slot', 'asId', 'nullBitmap'],
  clearDirtyLog: ['slot', 'asId', 'first', 'num', 'pages', 'nullBitmap'],
  setMemslot: ['slot', 'asId', 'logDirty', 'delete'],
  enableCap: ['cap', 'bytes', 'flags', 'capFlags'],
  createVcpu: [],
  writeEntry: ['vcpu', 'index', 'flags', 'slot', 'offset'],
  readEntry: ['vcpu', 'index'],
  checkExtension: ['cap'],
  mmapRing: ['vcpu', 'shared', 'write', 'exec'],
};

/**
 * Validates a scenario (as parsed from JSON) and returns it normalised: defaults filled in,
 * page ranges expanded, 64-bit values as bigint. Throws an Error naming the offending field.
 */
export function parseScenario(json: unknown): Scenario {
  const root: Field = new Field('');
  const o = obj(json, root, ['name', 'description', 'path', 'vm', 'memslots', 'vcpus', 'steps']);
  const name = str(o.name, root.at('name'));
  const description = o.description === undefined ? undefined : str(o.description, root.at('description'));
  let path: WritePath = 'fault';
  if (o.path !== undefined) {
    if (o.path !== 'fault' && o.path !== 'emulated') throw root.at('path').error(`expected "fault" or "emulated", got ${JSON.stringify(o.path)}`);
    path = o.path;
  }

  let vm: VmConfig | undefined;
  if (o.vm !== undefined) {
    const fv: Field = root.at('vm');
    const v = obj(o.vm, fv, ['ring', 'manualProtect']);
    vm = { manualProtect: optInt(v.manualProtect, fv.at('manualProtect'), 0, Number.MAX_SAFE_INTEGER, 0) };
    if (v.ring !== undefined) {
      const fr: Field = fv.at('ring');
      const r = obj(v.ring, fr, ['bytes', 'acqRel']);
      vm.ring = { bytes: u64(r.bytes, fr.at('bytes')), acqRel: optBool(r.acqRel, fr.at('acqRel'), false) };
    }
  }

  const memslots: Memslot[] = [];
  const fm: Field = root.at('memslots');
  if (o.memslots !== undefined) {
    if (!Array.isArray(o.memslots)) fm.fail('expected an array');
    o.memslots.forEach((m: Json, i: number) => {
      const f: Field = fm.at(i);
      const s = obj(m, f, ['slot', 'asId', 'gpa', 'pages', 'logDirty']);
      const slot = int(s.slot, f.at('slot'), 0, 32767);
      if (slot === RUNNER_SLOT) f.at('slot').fail(`${RUNNER_SLOT} is reserved for the kvm runner's own memory`);
      const asId = optInt(s.asId, f.at('asId'), 0, 1, 0);
      const gpa = int(s.gpa, f.at('gpa'), RUNNER_GPA_LIMIT, GPA_LIMIT - PAGE_SIZE);
      if (gpa % PAGE_SIZE !== 0) f.at('gpa').fail('must be a multiple of 4096');
      const pages = int(s.pages, f.at('pages'), 1, MAX_SLOT_PAGES);
      if (gpa + pages * PAGE_SIZE > GPA_LIMIT) f.at('pages').fail('the slot reaches beyond 2^48');
      const logDirty = bool(s.logDirty, f.at('logDirty'));
      for (const other of memslots) {
        if (other.slot === slot && other.asId === asId) f.at('slot').fail(`slot ${slot} (asId ${asId}) is declared twice`);
        if (other.asId === asId && gpa < other.gpa + other.pages * PAGE_SIZE && other.gpa < gpa + pages * PAGE_SIZE) {
          f.at('gpa').fail(`overlaps slot ${other.slot}`);
        }
      }
      memslots.push({ slot, asId, gpa, pages, logDirty });
    });
  }

  const vcpus = optInt(o.vcpus, root.at('vcpus'), 0, MAX_VCPUS, 0);
  const fs: Field = root.at('steps');
  if (!Array.isArray(o.steps)) fs.fail('expected an array');
  const findSlot = (f: Field, slot: number, asId: number): Memslot => {
    const m = memslots.find((x) => x.slot === slot && x.asId === asId);
    if (!m) f.fail(`slot ${slot} (asId ${asId}) is not declared in memslots`);
    return m;
  };
  let maxVcpus = vcpus;
  const steps: Step[] = o.steps.map((raw: Json, i: number): Step => {
    const f: Field = fs.at(i);
    if (!isObject(raw)) f.fail('expected an object');
    const op = raw.op;
    if (typeof op !== 'string' || !Object.hasOwn(STEP_FIELDS, op)) {
      f.at('op').fail(`unknown op ${JSON.stringify(op)} (known: ${Object.keys(STEP_FIELDS).join(', ')})`);
    }
    const s = obj(raw, f, ['op', 'note', ...STEP_FIELDS[op as StepOp]]);
    if (s.note !== undefined) str(s.note, f.at('note'));
    const vcpu = (): number => {
      const v = int(s.vcpu, f.at('vcpu'), 0, MAX_VCPUS - 1);
      if (v >= maxVcpus) f.at('vcpu').fail(`vCPU ${v} cannot exist here (${maxVcpus} created at most)`);
      return v;
    };
    const anySlot = (): { slot: number; asId: number } => ({
      slot: int(s.slot, f.at('slot'), 0, 0xffff),
      asId: optInt(s.asId, f.at('asId'), 0, 0xffff, 0),
    });
    switch (op as StepOp) {
      case 'write':
      case 'read': {
        const v = vcpu();
        const slot = int(s.slot, f.at('slot'), 0, 32767);
        const asId = optInt(s.asId, f.at('asId'), 0, 1, 0);
        const m = findSlot(f.at('slot'), slot, asId);
        const pages = pageSet(s.pages, f.at('pages'), m.pages, `the slot's ${m.pages} pages`);
        const exitEach = optBool(s.exitEach, f.at('exitEach'), false);
        if (op === 'read') return { op: 'read', vcpu: v, slot, asId, pages, exitEach };
        const storesPerPage = optInt(s.storesPerPage, f.at('storesPerPage'), 1, 1 << 20, 1);
        return { op: 'write', vcpu: v, slot, asId, pages, storesPerPage, exitEach };
      }
      case 'run':
        return { op: 'run', vcpu: vcpu(), stopOnIo: optBool(s.stopOnIo, f.at('stopOnIo'), false) };
      case 'harvest': {
        const step: HarvestStep = { op: 'harvest', vcpu: vcpu(), flagsValue: optInt(s.flagsValue, f.at('flagsValue'), 0, U32_MAX, 2) };
        if (s.max !== undefined) step.max = int(s.max, f.at('max'), 0, U32_MAX);
        return step;
      }
      case 'reset':
        return { op: 'reset' };
      case 'getDirtyLog':
        return { op: 'getDirtyLog', ...anySlot(), nullBitmap: optBool(s.nullBitmap, f.at('nullBitmap'), false) };
      case 'clearDirtyLog': {
        const sl = anySlot();
        const first = int(s.first, f.at('first'), 0, Number.MAX_SAFE_INTEGER);
        const num = int(s.num, f.at('num'), 0, U32_MAX);
        const bits = Math.max(64, Math.ceil(num / 64) * 64);
        const pages = s.pages === undefined ? [] : pageSet(s.pages, f.at('pages'), Number.MAX_SAFE_INTEGER, 'the bitmap');
        pages.forEach((p, j) => {
          if (p < first || p >= first + bits) f.at('pages').at(j).fail(`page ${p} is outside the bitmap [${first}, ${first + bits})`);
        });
        return { op: 'clearDirtyLog', ...sl, first, num, pages, nullBitmap: optBool(s.nullBitmap, f.at('nullBitmap'), false) };
      }
      case 'setMemslot': {
        const slot = int(s.slot, f.at('slot'), 0, 32767);
        const asId = optInt(s.asId, f.at('asId'), 0, 1, 0);
        findSlot(f.at('slot'), slot, asId);
        const del = optBool(s.delete, f.at('delete'), false);
        const logDirty = del ? optBool(s.logDirty, f.at('logDirty'), false) : bool(s.logDirty, f.at('logDirty'));
        return { op: 'setMemslot', slot, asId, logDirty, delete: del };
      }
      case 'enableCap': {
        const cap = capName(s.cap, f.at('cap'));
        const step: EnableCapStep = { op: 'enableCap', cap, capFlags: optInt(s.capFlags, f.at('capFlags'), 0, U32_MAX, 0) };
        if (cap === 'dirtyRing' || cap === 'dirtyRingAcqRel') {
          if (s.flags !== undefined) f.at('flags').fail(`${cap} takes "bytes", not "flags"`);
          step.bytes = u64(s.bytes, f.at('bytes'));
        } else {
          if (s.bytes !== undefined) f.at('bytes').fail(`${cap} takes "flags", not "bytes"`);
          if (cap === 'manualProtect' || s.flags !== undefined) step.flags = int(s.flags, f.at('flags'), 0, Number.MAX_SAFE_INTEGER);
        }
        return step;
      }
      case 'createVcpu':
        if (maxVcpus >= MAX_VCPUS) f.fail(`at most ${MAX_VCPUS} vCPUs`);
        maxVcpus++;
        return { op: 'createVcpu' };
      case 'writeEntry': {
        const step: WriteEntryStep = { op: 'writeEntry', vcpu: vcpu(), index: int(s.index, f.at('index'), 0, U32_MAX) };
        if (s.flags !== undefined) step.flags = int(s.flags, f.at('flags'), 0, U32_MAX);
        if (s.slot !== undefined) step.slot = int(s.slot, f.at('slot'), 0, U32_MAX);
        if (s.offset !== undefined) step.offset = u64(s.offset, f.at('offset'));
        if (step.flags === undefined && step.slot === undefined && step.offset === undefined) {
          f.fail('writeEntry needs at least one of flags, slot, offset');
        }
        return step;
      }
      case 'readEntry':
        return { op: 'readEntry', vcpu: vcpu(), index: int(s.index, f.at('index'), 0, U32_MAX) };
      case 'checkExtension':
        return { op: 'checkExtension', cap: capName(s.cap, f.at('cap')) };
      case 'mmapRing':
        return {
          op: 'mmapRing',
          vcpu: vcpu(),
          shared: optBool(s.shared, f.at('shared'), true),
          write: optBool(s.write, f.at('write'), true),
          exec: optBool(s.exec, f.at('exec'), false),
        };
    }
  });

  const scenario: Scenario = { name, path, memslots, vcpus, steps };
  if (description !== undefined) scenario.description = description;
  if (vm !== undefined) scenario.vm = vm;
  return scenario;
}

/** True when the scenario performs guest accesses, i.e. its results can depend on the write path. */
export function hasGuestAccesses(s: Scenario): boolean {
  return s.steps.some((st) => st.op === 'write' || st.op === 'read');
}

// ---- results: validation, canonical form, comparison ----

const EXIT_RE = /^(hlt|dirty_ring_full|io|other:[0-9]+)$/;

function offsetField(v: Json, f: Field): number | string {
  if (typeof v === 'number') return int(v, f, 0, Number.MAX_SAFE_INTEGER);
  const b = u64(v, f);
  if (b <= BigInt(Number.MAX_SAFE_INTEGER)) f.fail('offsets up to 2^53 - 1 must be numbers');
  return v as string;
}

/** Validates a results array (e.g. an `.expected.json` file) and returns it in canonical form. */
export function parseResults(json: unknown): StepResult[] {
  const root: Field = new Field('results');
  if (!Array.isArray(json)) root.fail('expected an array');
  return json.map((raw: Json, i: number): StepResult => {
    const f: Field = root.at(i);
    if (isObject(raw) && 'errno' in raw) {
      const o = obj(raw, f, ['errno']);
      const e = str(o.errno, f.at('errno'));
      if (!/^E[A-Z0-9]+$/.test(e)) f.at('errno').fail(`not an errno name: ${e}`);
      return { errno: e };
    }
    const o = obj(raw, f, ['rc', 'exit', 'entries', 'count', 'pages', 'value', 'entry']);
    if (o.rc !== 0) f.at('rc').fail('expected 0');
    const r: OkResult = { rc: 0 };
    if (o.exit !== undefined) {
      if (typeof o.exit !== 'string' || !EXIT_RE.test(o.exit)) f.at('exit').fail(`bad exit ${JSON.stringify(o.exit)}`);
      r.exit = o.exit as ExitName;
    }
    if (o.entries !== undefined) {
      const fe: Field = f.at('entries');
      if (!Array.isArray(o.entries)) fe.fail('expected an array');
      r.entries = o.entries.map((e: Json, j: number) => {
        const x = obj(e, fe.at(j), ['slot', 'offset']);
        return { slot: int(x.slot, fe.at(j).at('slot'), 0, U32_MAX), offset: offsetField(x.offset, fe.at(j).at('offset')) };
      });
    }
    if (o.count !== undefined) r.count = int(o.count, f.at('count'), 0, Number.MAX_SAFE_INTEGER);
    if (o.pages !== undefined) {
      if (!Array.isArray(o.pages)) throw f.at('pages').error('expected an array');
      r.pages = o.pages.map((p: Json, j: number) => int(p, f.at('pages').at(j), 0, Number.MAX_SAFE_INTEGER));
    }
    if (o.value !== undefined) r.value = int(o.value, f.at('value'), Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (o.entry !== undefined) {
      const fe: Field = f.at('entry');
      const x = obj(o.entry, fe, ['flags', 'slot', 'offset']);
      r.entry = {
        flags: int(x.flags, fe.at('flags'), 0, U32_MAX),
        slot: int(x.slot, fe.at('slot'), 0, U32_MAX),
        offset: offsetField(x.offset, fe.at('offset')),
      };
    }
    return r;
  });
}

/** A copy with every object's keys in the fixed order rc, errno, exit, count, value, pages, entries, entry. */
export function canonicalResults(results: readonly StepResult[]): StepResult[] {
  return results.map((r): StepResult => {
    if ('errno' in r) return { errno: r.errno };
    const c: OkResult = { rc: 0 };
    if (r.exit !== undefined) c.exit = r.exit;
    if (r.count !== undefined) c.count = r.count;
    if (r.value !== undefined) c.value = r.value;
    if (r.pages !== undefined) c.pages = [...r.pages];
    if (r.entries !== undefined) c.entries = r.entries.map((e) => ({ slot: e.slot, offset: e.offset }));
    if (r.entry !== undefined) c.entry = { flags: r.entry.flags, slot: r.entry.slot, offset: r.entry.offset };
    return c;
  });
}

/**
 * JSON-stable serialisation: canonical key order, one step per line. Equal results give
 * byte-identical text, so two engines can be compared with string or deep equality.
 */
export function serializeResults(results: readonly StepResult[]): string {
  const lines = canonicalResults(results).map((r) => `  ${JSON.stringify(r)}`);
  return lines.length === 0 ? '[]\n' : `[\n${lines.join(',\n')}\n]\n`;
}

/** Human-readable differences, one per differing step; empty when equal. */
export function diffResults(expected: readonly StepResult[], actual: readonly StepResult[], steps?: readonly Step[]): string[] {
  const a = canonicalResults(expected).map((r) => JSON.stringify(r));
  const b = canonicalResults(actual).map((r) => JSON.stringify(r));
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const label = steps?.[i] ? ` (${steps[i]?.op})` : '';
    out.push(`step ${i}${label}: expected ${a[i] ?? '(none)'}, got ${b[i] ?? '(none)'}`);
  }
  return out;
}
