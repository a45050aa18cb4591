/**
 * `parseScenario`: a scenario as parsed from JSON, validated and normalised in the order the
 * engines set it up — the VM's caps, the memslots, the vCPUs, then the steps (./step-parsers.ts).
 */
import { PAGE_SIZE } from '../../abi/constants.js';
import { Field, type Json, array, bool, int, obj, optBool, optInt, str, u64 } from './json-field.js';
import { StepScope, parseStep } from './step-parsers.js';
import {
  GPA_LIMIT, MAX_DECLARED_AS_ID, MAX_DECLARED_SLOT_ID, MAX_SLOT_PAGES, MAX_VCPUS, type Memslot, RUNNER_GPA_LIMIT,
  RUNNER_SLOT, type Scenario, type Step, type VmConfig, type WritePath,
} from './types.js';

const ROOT_FIELDS = ['name', 'description', 'path', 'vm', 'memslots', 'vcpus', 'steps'];

/**
 * Validates a scenario (as parsed from JSON) and returns it normalised: defaults filled in,
 * page ranges expanded, 64-bit values as bigint. Throws an Error naming the offending field.
 */
export function parseScenario(json: unknown): Scenario {
  const root = new Field('');
  const o = obj(json, root, ROOT_FIELDS);
  const name = str(o.name, root.at('name'));
  const description = o.description === undefined ? undefined : str(o.description, root.at('description'));
  const path = parsePath(o.path, root.at('path'));
  const vm = o.vm === undefined ? undefined : parseVm(o.vm, root.at('vm'));
  const memslots = o.memslots === undefined ? [] : parseMemslots(o.memslots, root.at('memslots'));
  const vcpus = optInt(o.vcpus, root.at('vcpus'), 0, MAX_VCPUS, 0);
  const steps = parseSteps(o.steps, root.at('steps'), new StepScope(memslots, vcpus));

  const scenario: Scenario = { name, path, memslots, vcpus, steps };
  if (description !== undefined) scenario.description = description;
  if (vm !== undefined) scenario.vm = vm;
  return scenario;
}

function parsePath(v: Json, f: Field): WritePath {
  if (v === undefined) return 'fault';
  if (v !== 'fault' && v !== 'emulated') throw f.error(`expected "fault" or "emulated", got ${JSON.stringify(v)}`);
  return v;
}

function parseVm(v: Json, f: Field): VmConfig {
  const o = obj(v, f, ['ring', 'manualProtect']);
  const vm: VmConfig = { manualProtect: optInt(o.manualProtect, f.at('manualProtect'), 0, Number.MAX_SAFE_INTEGER, 0) };
  if (o.ring !== undefined) {
    const fr = f.at('ring');
    const r = obj(o.ring, fr, ['bytes', 'acqRel']);
    vm.ring = { bytes: u64(r.bytes, fr.at('bytes')), acqRel: optBool(r.acqRel, fr.at('acqRel'), false) };
  }
  return vm;
}

/** The memslots in declaration order; each must clash with none declared before it. */
function parseMemslots(v: Json, f: Field): Memslot[] {
  const memslots: Memslot[] = [];
  array(v, f).forEach((m, i) => {
    const slot = parseMemslot(m, f.at(i));
    checkNoClash(slot, memslots, f.at(i));
    memslots.push(slot);
  });
  return memslots;
}

/** One memslot, outside the runner's own id and memory and within a 48-bit physical space. */
function parseMemslot(v: Json, f: Field): Memslot {
  const s = obj(v, f, ['slot', 'asId', 'gpa', 'pages', 'logDirty']);
  const slot = int(s.slot, f.at('slot'), 0, MAX_DECLARED_SLOT_ID);
  if (slot === RUNNER_SLOT) f.at('slot').fail(`${RUNNER_SLOT} is reserved for the kvm runner's own memory`);
  const asId = optInt(s.asId, f.at('asId'), 0, MAX_DECLARED_AS_ID, 0);
  const gpa = int(s.gpa, f.at('gpa'), RUNNER_GPA_LIMIT, GPA_LIMIT - PAGE_SIZE);
  if (gpa % PAGE_SIZE !== 0) f.at('gpa').fail(`must be a multiple of ${PAGE_SIZE}`);
  const pages = int(s.pages, f.at('pages'), 1, MAX_SLOT_PAGES);
  if (gpa + pages * PAGE_SIZE > GPA_LIMIT) f.at('pages').fail('the slot reaches beyond 2^48');
  const logDirty = bool(s.logDirty, f.at('logDirty'));
  return { slot, asId, gpa, pages, logDirty };
}

/** A memslot's id and its guest-physical range are each used once per address space. */
function checkNoClash(m: Memslot, declared: readonly Memslot[], f: Field): void {
  const end = m.gpa + m.pages * PAGE_SIZE;
  for (const other of declared) {
    if (other.slot === m.slot && other.asId === m.asId) f.at('slot').fail(`slot ${m.slot} (asId ${m.asId}) is declared twice`);
    if (other.asId === m.asId && m.gpa < other.gpa + other.pages * PAGE_SIZE && other.gpa < end) {
      f.at('gpa').fail(`overlaps slot ${other.slot}`);
    }
  }
}

function parseSteps(v: Json, f: Field, scope: StepScope): Step[] {
  return array(v, f).map((raw, i) => parseStep(raw, f.at(i), scope));
}
