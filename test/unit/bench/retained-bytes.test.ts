import { describe, expect, it } from 'vitest';
import { retainedBytes } from '../../../bench/lib/retained-bytes.js';

describe('retainedBytes (bench memory accounting)', () => {
  it('counts a buffer once whatever the number of views, skips excluded buffers, and files bytes by field', () => {
    const shared = new SharedArrayBuffer(4096);
    const guest = new SharedArrayBuffer(1 << 20);
    const root = {
      spte: new Int32Array(shared),
      again: new Uint8Array(shared, 16, 8),
      memory: new Uint32Array(guest),
      nested: { tags: new Float64Array(16) },
    };
    const r = retainedBytes([root], new Set([guest]));
    expect(r.total).toBe(4096 + 16 * 8);
    expect(r.byName.get('tags')).toBe(128);
    expect(r.byName.has('memory')).toBe(false);
  });

  it('counts the slots of JS arrays, follows Maps, and survives cycles', () => {
    const a: { self?: unknown; list: unknown[]; map: Map<string, unknown> } = { list: [null, null, null], map: new Map([['k', new Int32Array(4)]]) };
    a.self = a;
    const r = retainedBytes([a], new Set());
    expect(r.total).toBe(3 * 8 + 16);
    expect(r.byName.get('list')).toBe(24);
    expect(r.byName.get('map')).toBe(16);
  });
});
