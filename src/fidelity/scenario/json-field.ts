/**
 * Reading untyped JSON one field at a time, each reader naming the field it rejects
 * (`scenario: steps[3].pages[1]: 512 is out of range [0, 511]`). The scenario and results
 * parsers are built from these; their messages are part of the CLI's output.
 */

export type Json = unknown;

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;
const DECIMAL_RE = /^(0|[1-9][0-9]*)$/;

/** The path of a field inside the document, e.g. `steps[3].pages`. */
export class Field {
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

export function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object whose every key is in `allowed`, so that a misspelt name never passes silently. */
export function obj(v: Json, f: Field, allowed: readonly string[]): Record<string, Json> {
  if (!isObject(v)) f.fail('expected an object');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) f.at(k).fail(`unknown field (allowed: ${allowed.join(', ')})`);
  return v;
}

export function array(v: Json, f: Field): Json[] {
  if (!Array.isArray(v)) f.fail('expected an array');
  return v;
}

export function int(v: Json, f: Field, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) f.fail(`expected an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) f.fail(`${v} is out of range [${min}, ${max}]`);
  return v;
}

export function optInt(v: Json, f: Field, min: number, max: number, dflt: number): number {
  return v === undefined ? dflt : int(v, f, min, max);
}

export function bool(v: Json, f: Field): boolean {
  if (typeof v !== 'boolean') f.fail(`expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function optBool(v: Json, f: Field, dflt: boolean): boolean {
  return v === undefined ? dflt : bool(v, f);
}

/** A u64: a non-negative safe integer, or a decimal string for larger values. */
export function u64(v: Json, f: Field): bigint {
  let b: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) f.fail(`expected a non-negative safe integer or a decimal string, got ${v}`);
    b = BigInt(v);
  } else if (typeof v === 'string') {
    if (!DECIMAL_RE.test(v)) f.fail(`expected a decimal string, got ${JSON.stringify(v)}`);
    b = BigInt(v);
  } else f.fail(`expected a number or a decimal string, got ${JSON.stringify(v)}`);
  if (b > U64_MAX) f.fail('does not fit in 64 bits');
  return b;
}

export function str(v: Json, f: Field): string {
  if (typeof v !== 'string' || v.length === 0) f.fail('expected a non-empty string');
  return v;
}

/** One of `choices`' own keys (never an inherited name such as "constructor"). */
export function key<K extends string>(v: Json, f: Field, choices: Readonly<Record<K, unknown>>): K {
  if (typeof v !== 'string' || !Object.hasOwn(choices, v)) {
    f.fail(`expected one of ${Object.keys(choices).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as K;
}

/** Page numbers below `limit`: an array, or `{from, count}` expanded. `what` names the limit in errors. */
export function pageSet(v: Json, f: Field, limit: number, what: string): number[] {
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
