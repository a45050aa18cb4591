/** The guest's parameters every command shares: validated once, named by the CLI flag and the errno. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/base/config-error.js';
import { int, stripUndefined } from '../../../src/base/config-values.js';
import { CLEAR_CHUNK_ALIGN_PAGES, MAX_GUEST_VCPUS, validateGuestShape, validateRingEntries } from '../../../src/userspace/guest-shape.js';

const MiB = 2 ** 20;
const base = {
  log: 'ring',
  clearChunkPages: 1024,
  initiallySet: false,
  deviceWriters: 0,
  deviceIntervalUs: 100,
  vcpus: 2,
  memoryBytes: 4 * MiB,
  memslots: 1,
  ringEntries: 4096,
  workload: 'random',
  burstPages: 8,
  burstPercent: 5,
  seed: 1,
} as const;

function problem(f: () => unknown): { param: string; errno: string } {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const c = e as ConfigError;
    return { param: c.param, errno: c.errno };
  }
  throw new Error('no ConfigError');
}

describe('validateGuestShape', () => {
  it('returns the valid values and the page count', () => {
    expect(validateGuestShape(base, {})).toMatchObject({ log: 'ring', vcpus: 2, memoryBytes: 4 * MiB, pages: 1024, ringWithBitmap: false });
  });

  it('gives a ring VM with devices the bitmap too, unless told otherwise', () => {
    expect(validateGuestShape({ ...base, deviceWriters: 1 }, {}).ringWithBitmap).toBe(true);
    expect(validateGuestShape({ ...base, deviceWriters: 1 }, { ringWithBitmap: false }).ringWithBitmap).toBe(false);
    expect(validateGuestShape({ ...base, log: 'bitmap', deviceWriters: 1 }, {}).ringWithBitmap).toBe(false);
  });

  it.each([
    [{ ringEntries: 512 }, { log: 'clear' }, '--ring-entries'],
    [{ initiallySet: true }, { log: 'ring' }, '--initially-set'],
    [{ clearChunkPages: 64 }, { log: 'bitmap' }, '--clear-chunk-pages'],
    [{ ringWithBitmap: true }, { log: 'clear' }, '--ring-with-bitmap'],
  ])('refuses %o, a flag of another log mode (%o)', (input, mode, param) => {
    expect(problem(() => validateGuestShape({ ...base, ...mode, ...input }, input))).toEqual({ param, errno: 'EINVAL' });
  });

  it.each([
    [{ log: 'dirty' }, '--log'],
    [{ clearChunkPages: CLEAR_CHUNK_ALIGN_PAGES + 1 }, '--clear-chunk-pages'],
    [{ vcpus: MAX_GUEST_VCPUS + 1 }, '--vcpus'],
    [{ memoryBytes: 4 * MiB + 1 }, '--memory'],
    [{ memslots: 2048 }, '--memslots'],
    [{ workload: 'chaos' }, '--workload'],
    [{ burstPercent: 101 }, '--burst-percent'],
  ])('refuses %o, naming %s', (over, param) => {
    expect(problem(() => validateGuestShape({ ...base, ...over }, {}))).toEqual({ param, errno: 'EINVAL' });
  });

  it('names the errno the kernel gives for a ring size', () => {
    expect(validateRingEntries(256)).toBe(256);
    expect(problem(() => validateRingEntries(1000))).toEqual({ param: '--ring-entries', errno: 'EINVAL' });
    expect(problem(() => validateRingEntries(1 << 17))).toEqual({ param: '--ring-entries', errno: 'E2BIG' });
  });

  it('a ring whose bytes pass 2^32 is refused with what the u32 size would have made of it', () => {
    // 268435712 × 16 = 2^32 + 4096: the kernel would build a 256-entry ring.
    expect(() => validateRingEntries(268435712)).toThrow(
      '--ring-entries 268435712: E2BIG, 268435712 entries are 4294971392 bytes, which the u32 size of KVM_ENABLE_CAP truncates to 4096 (a 256-entry ring, not the one asked for); rings hold at most 65536 entries (1 MiB)',
    );
    // 2^31 × 16 = 2^35: truncated to 0 bytes, which the kernel refuses as not a power of two.
    expect(() => validateRingEntries(2147483648)).toThrow(/^--ring-entries 2147483648: EINVAL, 2147483648 entries are 34359738368 bytes, which the u32 size of KVM_ENABLE_CAP truncates to 0, and the kernel refuses that \(ring size must be a power of two/);
    expect(problem(() => validateRingEntries(1e20))).toEqual({ param: '--ring-entries', errno: 'E2BIG' });
  });
});

describe('config values', () => {
  it('int accepts an integer in range and names the parameter otherwise', () => {
    expect(int('--n', 3, 1, 5, 'n')).toBe(3);
    expect(problem(() => int('--n', 6, 1, 5, 'n'))).toEqual({ param: '--n', errno: 'EINVAL' });
    expect(problem(() => int('--n', 1.5, 1, 5, 'n'))).toEqual({ param: '--n', errno: 'EINVAL' });
  });

  it('stripUndefined keeps the defaults an undefined field would have erased', () => {
    expect({ a: 1, b: 2, ...stripUndefined({ a: undefined, b: 3 }) }).toEqual({ a: 1, b: 3 });
  });
});
