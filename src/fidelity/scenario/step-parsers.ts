/**
 * One validator per scenario op, in a table: the fields the op accepts and how they are read,
 * defaults filled in. Fields are read in a fixed order per op, so that a step with several
 * faults is always rejected for the same one.
 */
import { KVM_DIRTY_GFN_F_RESET } from '../../abi/constants.js';
import {
  type Field, type Json, U16_MAX, U32_MAX, bool, int, isObject, key, obj, optBool, optInt, pageSet, str, u64,
} from './json-field.js';
import {
  CAP_NUMBERS, type CapName, findMemslot, MAX_DECLARED_AS_ID, MAX_DECLARED_SLOT_ID, MAX_VCPUS, type Memslot, type Step,
  type StepOf, type StepOp,
} from './types.js';

/** Stores one `write` step may make to each page: bounds the queue a scenario can build. */
const MAX_STORES_PER_PAGE = 1 << 20;
/** Bits in one word of a CLEAR bitmap (a u64): the bitmap has max(1, ceil(num / 64)) of them. */
const CLEAR_BITMAP_WORD_BITS = 64;

/**
 * What the steps before this one have made possible: the declared memslots, and how many vCPUs
 * can exist by now (the setup's, plus one per `createVcpu` step so far).
 */
export class StepScope {
  constructor(readonly memslots: readonly Memslot[], public vcpuLimit: number) {}
}

/** One step's fields, each read with its own field path for errors. */
class StepFields {
  constructor(private readonly s: Record<string, Json>, readonly f: Field, readonly scope: StepScope) {}

  has(name: string): boolean {
    return this.s[name] !== undefined;
  }
  int(name: string, min: number, max: number): number {
    return int(this.s[name], this.f.at(name), min, max);
  }
  optInt(name: string, min: number, max: number, dflt: number): number {
    return optInt(this.s[name], this.f.at(name), min, max, dflt);
  }
  bool(name: string): boolean {
    return bool(this.s[name], this.f.at(name));
  }
  optBool(name: string, dflt: boolean): boolean {
    return optBool(this.s[name], this.f.at(name), dflt);
  }
  u64(name: string): bigint {
    return u64(this.s[name], this.f.at(name));
  }
  cap(): CapName {
    return key(this.s.cap, this.f.at('cap'), CAP_NUMBERS);
  }
  pages(limit: number, what: string): number[] {
    return pageSet(this.s.pages, this.f.at('pages'), limit, what);
  }

  /** A vCPU that exists at this point of the scenario. */
  vcpu(): number {
    const v = this.int('vcpu', 0, MAX_VCPUS - 1);
    if (v >= this.scope.vcpuLimit) this.f.at('vcpu').fail(`vCPU ${v} cannot exist here (${this.scope.vcpuLimit} created at most)`);
    return v;
  }

  /** `slot` and `asId` of a memslot declared in `memslots`. */
  declaredSlot(): Memslot {
    const slot = this.int('slot', 0, MAX_DECLARED_SLOT_ID);
    const asId = this.optInt('asId', 0, MAX_DECLARED_AS_ID, 0);
    const m = findMemslot(this.scope.memslots, slot, asId);
    if (!m) throw this.f.at('slot').error(`slot ${slot} (asId ${asId}) is not declared in memslots`);
    return m;
  }

  /** Any u16 `slot` and `asId`: GET and CLEAR pass them to the kernel, whose range checks a scenario tests. */
  anySlot(): { slot: number; asId: number } {
    return { slot: this.int('slot', 0, U16_MAX), asId: this.optInt('asId', 0, U16_MAX, 0) };
  }
}

interface StepParser<K extends StepOp> {
  /** Fields the op accepts besides `op` and `note`, in the order error messages list them. */
  readonly fields: readonly string[];
  parse(r: StepFields): StepOf<K>;
}

/** The fields `write` and `read` share: a vCPU's queued accesses to pages of a declared memslot. */
function access(r: StepFields): { vcpu: number; slot: number; asId: number; pages: number[]; exitEach: boolean } {
  const vcpu = r.vcpu();
  const m = r.declaredSlot();
  const pages = r.pages(m.pages, `the slot's ${m.pages} pages`);
  return { vcpu, slot: m.slot, asId: m.asId, pages, exitEach: r.optBool('exitEach', false) };
}

function parseWrite(r: StepFields): StepOf<'write'> {
  const { vcpu, slot, asId, pages, exitEach } = access(r);
  return { op: 'write', vcpu, slot, asId, pages, storesPerPage: r.optInt('storesPerPage', 1, MAX_STORES_PER_PAGE, 1), exitEach };
}

function parseHarvest(r: StepFields): StepOf<'harvest'> {
  const vcpu = r.vcpu();
  const step: StepOf<'harvest'> = { op: 'harvest', vcpu, flagsValue: r.optInt('flagsValue', 0, U32_MAX, KVM_DIRTY_GFN_F_RESET) };
  if (r.has('max')) step.max = r.int('max', 0, U32_MAX);
  return step;
}

function parseClearDirtyLog(r: StepFields): StepOf<'clearDirtyLog'> {
  const { slot, asId } = r.anySlot();
  const first = r.int('first', 0, Number.MAX_SAFE_INTEGER);
  const num = r.int('num', 0, U32_MAX);
  const bits = Math.max(CLEAR_BITMAP_WORD_BITS, Math.ceil(num / CLEAR_BITMAP_WORD_BITS) * CLEAR_BITMAP_WORD_BITS);
  const pages = r.has('pages') ? r.pages(Number.MAX_SAFE_INTEGER, 'the bitmap') : [];
  pages.forEach((p, j) => {
    if (p < first || p >= first + bits) r.f.at('pages').at(j).fail(`page ${p} is outside the bitmap [${first}, ${first + bits})`);
  });
  return { op: 'clearDirtyLog', slot, asId, first, num, pages, nullBitmap: r.optBool('nullBitmap', false) };
}

function parseSetMemslot(r: StepFields): StepOf<'setMemslot'> {
  const { slot, asId } = r.declaredSlot();
  const del = r.optBool('delete', false);
  // A deletion needs no log flag: the slot is gone either way.
  const logDirty = del ? r.optBool('logDirty', false) : r.bool('logDirty');
  return { op: 'setMemslot', slot, asId, logDirty, delete: del };
}

/** The ring caps take a byte size, the others flags; both become args[0] of the enable. */
function parseEnableCap(r: StepFields): StepOf<'enableCap'> {
  const cap = r.cap();
  const step: StepOf<'enableCap'> = { op: 'enableCap', cap, capFlags: r.optInt('capFlags', 0, U32_MAX, 0) };
  if (cap === 'dirtyRing' || cap === 'dirtyRingAcqRel') {
    if (r.has('flags')) r.f.at('flags').fail(`${cap} takes "bytes", not "flags"`);
    step.bytes = r.u64('bytes');
  } else {
    if (r.has('bytes')) r.f.at('bytes').fail(`${cap} takes "flags", not "bytes"`);
    if (cap === 'manualProtect' || r.has('flags')) step.flags = r.int('flags', 0, Number.MAX_SAFE_INTEGER);
  }
  return step;
}

function parseCreateVcpu(r: StepFields): StepOf<'createVcpu'> {
  if (r.scope.vcpuLimit >= MAX_VCPUS) r.f.fail(`at most ${MAX_VCPUS} vCPUs`);
  r.scope.vcpuLimit++;
  return { op: 'createVcpu' };
}

function parseWriteEntry(r: StepFields): StepOf<'writeEntry'> {
  const vcpu = r.vcpu();
  const step: StepOf<'writeEntry'> = { op: 'writeEntry', vcpu, index: r.int('index', 0, U32_MAX) };
  if (r.has('flags')) step.flags = r.int('flags', 0, U32_MAX);
  if (r.has('slot')) step.slot = r.int('slot', 0, U32_MAX);
  if (r.has('offset')) step.offset = r.u64('offset');
  if (step.flags === undefined && step.slot === undefined && step.offset === undefined) {
    r.f.fail('writeEntry needs at least one of flags, slot, offset');
  }
  return step;
}

/** Every op's validator. The key order is the one the "unknown op" error lists. */
const STEP_PARSERS: { readonly [K in StepOp]: StepParser<K> } = {
  write: { fields: ['vcpu', 'slot', 'asId', 'pages', 'storesPerPage', 'exitEach'], parse: parseWrite },
  read: { fields: ['vcpu', 'slot', 'asId', 'pages', 'exitEach'], parse: (r) => ({ op: 'read', ...access(r) }) },
  run: {
    fields: ['vcpu', 'stopOnIo'],
    parse: (r) => ({ op: 'run', vcpu: r.vcpu(), stopOnIo: r.optBool('stopOnIo', false) }),
  },
  harvest: { fields: ['vcpu', 'max', 'flagsValue'], parse: parseHarvest },
  reset: { fields: [], parse: () => ({ op: 'reset' }) },
  getDirtyLog: {
    fields: ['slot', 'asId', 'nullBitmap'],
    parse: (r) => ({ op: 'getDirtyLog', ...r.anySlot(), nullBitmap: r.optBool('nullBitmap', false) }),
  },
  clearDirtyLog: { fields: ['slot', 'asId', 'first', 'num', 'pages', 'nullBitmap'], parse: parseClearDirtyLog },
  setMemslot: { fields: ['slot', 'asId', 'logDirty', 'delete'], parse: parseSetMemslot },
  enableCap: { fields: ['cap', 'bytes', 'flags', 'capFlags'], parse: parseEnableCap },
  createVcpu: { fields: [], parse: parseCreateVcpu },
  writeEntry: { fields: ['vcpu', 'index', 'flags', 'slot', 'offset'], parse: parseWriteEntry },
  readEntry: {
    fields: ['vcpu', 'index'],
    parse: (r) => ({ op: 'readEntry', vcpu: r.vcpu(), index: r.int('index', 0, U32_MAX) }),
  },
  checkExtension: { fields: ['cap'], parse: (r) => ({ op: 'checkExtension', cap: r.cap() }) },
  mmapRing: {
    fields: ['vcpu', 'shared', 'write', 'exec'],
    // The defaults are a VMM's own mapping: MAP_SHARED, read/write, not executable.
    parse: (r) => ({
      op: 'mmapRing', vcpu: r.vcpu(), shared: r.optBool('shared', true), write: r.optBool('write', true), exec: r.optBool('exec', false),
    }),
  },
};

/** Validates one step against its op's table entry; `scope` follows what the step creates. */
export function parseStep(raw: Json, f: Field, scope: StepScope): Step {
  if (!isObject(raw)) f.fail('expected an object');
  const op = raw.op;
  if (typeof op !== 'string' || !Object.hasOwn(STEP_PARSERS, op)) {
    f.at('op').fail(`unknown op ${JSON.stringify(op)} (known: ${Object.keys(STEP_PARSERS).join(', ')})`);
  }
  const parser = STEP_PARSERS[op as StepOp];
  const s = obj(raw, f, ['op', 'note', ...parser.fields]);
  if (s.note !== undefined) str(s.note, f.at('note'));
  return parser.parse(new StepFields(s, f, scope));
}
