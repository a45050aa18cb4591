/** Userspace's mirror of page-track notifications: a changed page must show its writer's last notified header. */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, writePageHeader } from '../../../src/guest/guest-memory.js';
import { NotificationMirror } from '../../../src/harness/notification-mirror.js';
import { TrackRingEntryKind } from '../../../src/pagetrack/notification-ring-layout.js';
import type { TrackNotification } from '../../../src/pagetrack/notification-ring.js';
import { SLOT_GFN, ringVm } from '../../helpers/vm-fixtures.js';

const HEADER_BYTES = GUEST_PAGE_HEADER_WORDS * 4;

function headerStore(gfn: number, vcpu: number, iteration: number, seq: number): TrackNotification {
  const data = new Uint32Array(GUEST_PAGE_HEADER_WORDS);
  writePageHeader(data, 0, iteration, vcpu, seq);
  return { kind: TrackRingEntryKind.WRITE, seq, ring: vcpu, vcpu, addr: gfn * PAGE_SIZE, length: HEADER_BYTES, data };
}

function setup() {
  const { slot } = ringVm({ pages: 16, vcpus: 2 });
  const gfns = [SLOT_GFN + 3, SLOT_GFN + 5];
  const mirror = new NotificationMirror(gfns, [slot], 2);
  const write = (i: number, vcpu: number, iteration: number, seq: number): void =>
    writePageHeader(slot.mem32, (gfns[i]! - SLOT_GFN) * PAGE_WORDS, iteration, vcpu, seq);
  return { mirror, gfns, write };
}

describe('NotificationMirror', () => {
  it('agrees with an unchanged page, and with a changed one whose last store was notified', () => {
    const { mirror, gfns, write } = setup();
    mirror.watch(0, 1);
    expect(mirror.agrees(0)).toBe(true);
    write(0, 1, 2, 7);
    mirror.record(headerStore(gfns[0]!, 1, 2, 7));
    expect(mirror.agrees(0)).toBe(true);
  });

  it('disagrees when the last store never reached userspace', () => {
    const { mirror, gfns, write } = setup();
    mirror.watch(0, 1);
    mirror.record(headerStore(gfns[0]!, 1, 2, 6));
    write(0, 1, 2, 7);
    expect(mirror.agrees(0)).toBe(false);
    // Another vCPU's notification does not stand for this writer's store.
    mirror.record(headerStore(gfns[0]!, 0, 2, 7));
    expect(mirror.agrees(0)).toBe(false);
  });

  it('ignores stores that are not a whole page header of a candidate page', () => {
    const { mirror, gfns, write } = setup();
    mirror.watch(1, 1);
    write(1, 0, 2, 1);
    mirror.record({ ...headerStore(gfns[1]!, 0, 2, 1), length: 4 });
    mirror.record({ ...headerStore(gfns[1]!, 0, 2, 1), addr: gfns[1]! * PAGE_SIZE + 8 });
    mirror.record(headerStore(SLOT_GFN + 9, 0, 2, 1));
    expect(mirror.agrees(1)).toBe(false);
  });

  it('takes the parked page as the new baseline, and forgets notifications when watching starts again', () => {
    const { mirror, gfns, write } = setup();
    mirror.watch(0, 1);
    write(0, 0, 2, 1);
    expect(mirror.agrees(0)).toBe(false);
    mirror.snapshot(0);
    expect(mirror.agrees(0)).toBe(true);
    mirror.record(headerStore(gfns[0]!, 0, 3, 2));
    mirror.watch(0, 3);
    write(0, 0, 3, 2);
    expect(mirror.agrees(0)).toBe(false);
    expect(mirror.watchedBefore(0, 3)).toBe(false);
    expect(mirror.watchedBefore(0, 4)).toBe(true);
  });
});
