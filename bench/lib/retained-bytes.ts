/**
 * What a structure really allocates: walk the object graph from some roots and sum the bytes of
 * every distinct ArrayBuffer / SharedArrayBuffer it reaches (through typed arrays, DataViews or
 * directly), each counted once whatever the number of views on it, and the element slots of
 * plain JS arrays (8 bytes each: one tagged pointer, no pointer compression in Node). Buffers in
 * `exclude` (guest memory) are skipped. Each buffer is filed under the property name it was
 * first reached through, so that the sum can be broken down ("spte", "gfnTrack", "tags", ...).
 */

const JS_ARRAY_SLOT_BYTES = 8;

export interface RetainedBytes {
  readonly total: number;
  /** Bytes by the property name the buffer (or JS array) was first reached through. */
  readonly byName: ReadonlyMap<string, number>;
}

type AnyBuffer = ArrayBuffer | SharedArrayBuffer;

function isBuffer(x: object): x is AnyBuffer {
  return x instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && x instanceof SharedArrayBuffer);
}

export function retainedBytes(roots: readonly object[], exclude: ReadonlySet<AnyBuffer>): RetainedBytes {
  const seen = new Set<object>();
  const byName = new Map<string, number>();
  let total = 0;
  const file = (name: string, bytes: number): void => {
    byName.set(name, (byName.get(name) ?? 0) + bytes);
    total += bytes;
  };
  const stack: { value: object; name: string }[] = roots.map((value) => ({ value, name: 'root' }));
  while (stack.length > 0) {
    const { value, name } = stack.pop()!;
    if (seen.has(value)) continue;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      stack.push({ value: value.buffer, name });
      continue;
    }
    if (isBuffer(value)) {
      if (!exclude.has(value)) file(name, value.byteLength);
      continue;
    }
    if (Array.isArray(value)) {
      file(name, value.length * JS_ARRAY_SLOT_BYTES);
      for (const v of value) if (v !== null && typeof v === 'object') stack.push({ value: v as object, name });
      continue;
    }
    if (value instanceof Map || value instanceof Set) {
      for (const v of value instanceof Map ? [...value.keys(), ...value.values()] : [...value]) {
        if (v !== null && typeof v === 'object') stack.push({ value: v as object, name });
      }
      continue;
    }
    for (const key of Object.getOwnPropertyNames(value)) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== null && typeof v === 'object') stack.push({ value: v, name: key });
    }
  }
  return { total, byName };
}
