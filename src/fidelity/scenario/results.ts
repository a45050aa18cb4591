/**
 * Step results: validating a checked-in expectation, their canonical form, and the comparison
 * of two engines' results (deep equality after `canonicalResults`).
 */
import { Field, type Json, U32_MAX, array, int, isObject, obj, str, u64 } from './json-field.js';
import type { DirtyEntry, ErrResult, ExitName, OkResult, RawEntry, Step, StepResult } from './types.js';

const EXIT_RE = /^(hlt|dirty_ring_full|io|other:[0-9]+)$/;
const ERRNO_RE = /^E[A-Z0-9]+$/;

/** Validates a results array (e.g. an `.expected.json` file) and returns it in canonical form. */
export function parseResults(json: unknown): StepResult[] {
  const root = new Field('results');
  return array(json, root).map((raw, i): StepResult => {
    const f = root.at(i);
    return isObject(raw) && 'errno' in raw ? parseErrResult(raw, f) : parseOkResult(raw, f);
  });
}

function parseErrResult(raw: Json, f: Field): ErrResult {
  const o = obj(raw, f, ['errno']);
  const e = str(o.errno, f.at('errno'));
  if (!ERRNO_RE.test(e)) f.at('errno').fail(`not an errno name: ${e}`);
  return { errno: e };
}

function parseOkResult(raw: Json, f: Field): OkResult {
  const o = obj(raw, f, ['rc', 'exit', 'entries', 'count', 'pages', 'value', 'entry']);
  if (o.rc !== 0) f.at('rc').fail('expected 0');
  const r: OkResult = { rc: 0 };
  if (o.exit !== undefined) r.exit = parseExit(o.exit, f.at('exit'));
  if (o.entries !== undefined) {
    const fe = f.at('entries');
    r.entries = array(o.entries, fe).map((e, j) => parseDirtyEntry(e, fe.at(j)));
  }
  if (o.count !== undefined) r.count = int(o.count, f.at('count'), 0, Number.MAX_SAFE_INTEGER);
  if (o.pages !== undefined) {
    const fp = f.at('pages');
    r.pages = array(o.pages, fp).map((p, j) => int(p, fp.at(j), 0, Number.MAX_SAFE_INTEGER));
  }
  if (o.value !== undefined) r.value = int(o.value, f.at('value'), Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (o.entry !== undefined) r.entry = parseRawEntry(o.entry, f.at('entry'));
  return r;
}

function parseExit(v: Json, f: Field): ExitName {
  if (typeof v !== 'string' || !EXIT_RE.test(v)) f.fail(`bad exit ${JSON.stringify(v)}`);
  return v as ExitName;
}

function parseDirtyEntry(v: Json, f: Field): DirtyEntry {
  const x = obj(v, f, ['slot', 'offset']);
  return { slot: int(x.slot, f.at('slot'), 0, U32_MAX), offset: offsetField(x.offset, f.at('offset')) };
}

function parseRawEntry(v: Json, f: Field): RawEntry {
  const x = obj(v, f, ['flags', 'slot', 'offset']);
  return {
    flags: int(x.flags, f.at('flags'), 0, U32_MAX),
    slot: int(x.slot, f.at('slot'), 0, U32_MAX),
    offset: offsetField(x.offset, f.at('offset')),
  };
}

/** An offset in the one form results use: a number up to 2^53 − 1, a decimal string above. */
function offsetField(v: Json, f: Field): number | string {
  if (typeof v === 'number') return int(v, f, 0, Number.MAX_SAFE_INTEGER);
  const b = u64(v, f);
  if (b <= BigInt(Number.MAX_SAFE_INTEGER)) f.fail('offsets up to 2^53 - 1 must be numbers');
  return v as string;
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
