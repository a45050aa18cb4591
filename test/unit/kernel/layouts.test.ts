/**
 * Shared-memory layouts: the ABI's (kvm_dirty_gfn, the block helper) and the kernel's blocks,
 * and the checks that refuse a layout or a placement the typed views cannot honour.
 */
import { describe, expect, it } from 'vitest';
import { encodeSlot, slotAsId, slotId } from '../../../src/abi/constants.js';
import { DIRTY_GFN_WORDS, ringViews } from '../../../src/abi/dirty-gfn.js';
import { SharedBlock, defineBlock } from '../../../src/abi/layout.js';
import { AssertionError } from '../../../src/base/assert.js';
import { MemslotLayout } from '../../../src/kernel/memslot-layout.js';
import { PageTrackLayout, PageTrackVcpuLayout, TrackNotifierLayout, pageTrackBufferLayout } from '../../../src/kernel/page-track-layout.js';
import { VcpuLayout } from '../../../src/kernel/vcpu-layout.js';
import { VmLayout } from '../../../src/kernel/vm-layout.js';

describe('ABI layout', () => {
  it('kvm_dirty_gfn is 16 bytes: flags @0, slot @4, offset @8', () => {
    expect(DIRTY_GFN_WORDS).toBe(4);
  });
  it('shared blocks keep their float region 8-byte aligned', () => {
    expect(VmLayout.floatByteOffset % 8).toBe(0);
    expect(VcpuLayout.floatByteOffset % 8).toBe(0);
  });
  it('slot encoding is (as_id << 16) | id', () => {
    expect(encodeSlot(1, 7)).toBe(0x10007);
  });
});

describe('slot encoding helpers', () => {
  it('round-trip as_id and id', () => {
    expect(slotAsId(encodeSlot(1, 7))).toBe(1);
    expect(slotId(encodeSlot(1, 7))).toBe(7);
    expect(slotId(encodeSlot(0, 32763))).toBe(32763);
  });
});

describe('layout checks', () => {
  it('every kernel block is a whole number of 8-byte units, so blocks placed back to back stay aligned', () => {
    for (const layout of [VmLayout, VcpuLayout, MemslotLayout, PageTrackLayout, TrackNotifierLayout, PageTrackVcpuLayout]) {
      expect(layout.bytes % 8).toBe(0);
      expect(layout.floatByteOffset % 8).toBe(0);
    }
    const pt = pageTrackBufferLayout(256);
    expect([pt.notifiersOffset % 8, pt.vcpusOffset % 8, pt.bytes % 8]).toEqual([0, 0, 0]);
  });

  it('a layout naming a field twice is refused', () => {
    expect(() => defineBlock('twice', ['A', 'B', 'A'], [])).toThrow(AssertionError);
    expect(() => defineBlock('across', ['A'], ['A'])).toThrow(AssertionError);
    expect(defineBlock('fine', ['A', 'B', 'C'], ['D']).bytes).toBe(24);
  });

  it('a block placed off an 8-byte boundary is refused', () => {
    const layout = defineBlock('one', ['A'], ['F']);
    const buffer = new SharedArrayBuffer(64);
    expect(() => new SharedBlock(layout, buffer, 4)).toThrow(AssertionError);
    expect(new SharedBlock(layout, buffer, 8).f64.length).toBe(1);
  });

  it('a ring mapping must be whole kvm_dirty_gfn entries', () => {
    expect(() => ringViews(new SharedArrayBuffer(4096 + 4))).toThrow(AssertionError);
    expect(ringViews(new SharedArrayBuffer(4096)).entryCount).toBe(256);
  });
});
