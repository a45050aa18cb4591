/** A pass of the page pump: every marked page once, in order, each read only once the tracker allows it. */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, PAGE_WORDS } from '../../../../src/abi/constants.js';
import { AssertionError } from '../../../../src/base/assert.js';
import { writePageHeader } from '../../../../src/guest/guest-memory.js';
import type { VcpuControlPlane } from '../../../../src/userspace/vcpu-control.js';
import { BandwidthPacer } from '../../../../src/userspace/migration/bandwidth.js';
import { DestinationMemory, LocalSender } from '../../../../src/userspace/migration/destination.js';
import { GuestService } from '../../../../src/userspace/migration/guest-service.js';
import { PageBitmap } from '../../../../src/userspace/migration/page-bitmap.js';
import { type PassProgress, PagePump } from '../../../../src/userspace/migration/page-pump.js';
import { SlotPages } from '../../../../src/userspace/migration/slot-pages.js';
import { ringVm } from '../../../helpers/vm-fixtures.js';

/** A guest with no threads: nothing dies, nothing stalls. */
const quietControl = {
  anyDeadThread: () => null,
  releaseRingFullStalls: () => false,
  doorbell: () => 0,
  waitDoorbell: async () => {},
} as unknown as VcpuControlPlane;

function setup(pageCount = 200) {
  const { slot } = ringVm({ pages: pageCount });
  const pages = new SlotPages([slot]);
  const sources = [new Int32Array(slot.buffers.memory)];
  const destination = new DestinationMemory([slot.pageCount]);
  const events: string[] = [];
  const tracker = {
    toSend: new PageBitmap(pages.total),
    beforeSend: (si: number, page: number) => events.push(`before ${si}:${page}`),
    finishPass: () => events.push('finish'),
  };
  const progress: PassProgress[] = [];
  const guest = new GuestService(quietControl, 'bitmap', () => {}, null);
  // A link fast enough that a pass never waits on it.
  const pacer = new BandwidthPacer(1e12, 5, PAGE_SIZE);
  const pump = new PagePump(pages, sources, tracker, new LocalSender(destination), new LocalSender(destination), pacer, guest, {
    onRoundStart: (p) => progress.push(p),
    onProgress: (p) => progress.push(p),
    progressIntervalMs: 1e9,
  });
  return { slot, pump, tracker, destination, events, progress };
}

describe('PagePump', () => {
  it('sends every marked page once, in order, after the tracker allows each', async () => {
    const { slot, pump, tracker, destination, events, progress } = setup();
    for (const g of [150, 3, 70]) tracker.toSend.set(g);
    writePageHeader(slot.mem32, 70 * PAGE_WORDS, 5, 1, 9);
    pump.beginPass();
    await pump.pass(2, 'iterate');
    expect(events).toEqual(['before 0:3', 'before 0:70', 'before 0:150', 'finish']);
    expect(tracker.toSend.count()).toBe(0);
    expect(pump.sent).toBe(3);
    expect(destination.views[0]![70 * PAGE_WORDS]).toBe(5);
    expect(progress).toEqual([
      { round: 2, kind: 'iterate', pagesSent: 0, pagesToSend: 3 },
      { round: 2, kind: 'iterate', pagesSent: 3, pagesToSend: 3 },
    ]);
  });

  it('sends more pages than one batch holds', async () => {
    const { pump, tracker } = setup();
    tracker.toSend.setAll();
    pump.beginPass();
    await pump.pass(1, 'bulk');
    expect(pump.sent).toBe(200);
    expect(tracker.toSend.count()).toBe(0);
  });

  it('counts a page sent again with an unchanged header as a resend', async () => {
    const { slot, pump, tracker } = setup();
    tracker.toSend.set(8);
    pump.beginPass();
    await pump.pass(1, 'bulk');
    expect(pump.resent).toBe(0);
    tracker.toSend.set(8);
    tracker.toSend.set(9);
    writePageHeader(slot.mem32, 9 * PAGE_WORDS, 2, 0, 1);
    pump.beginPass();
    await pump.pass(2, 'iterate');
    expect({ sent: pump.sent, resent: pump.resent }).toEqual({ sent: 2, resent: 1 });
    pump.sendUnpaced(8);
    expect({ sent: pump.sent, resent: pump.resent }).toEqual({ sent: 3, resent: 2 });
  });

  it('asserts one source view per memslot', () => {
    const { slot } = ringVm({ pages: 8 });
    const pages = new SlotPages([slot]);
    const destination = new DestinationMemory([8]);
    const guest = new GuestService(quietControl, 'bitmap', () => {}, null);
    const tracker = { toSend: new PageBitmap(8), beforeSend: () => {}, finishPass: () => {} };
    const make = () => new PagePump(pages, [], tracker, new LocalSender(destination), new LocalSender(destination), new BandwidthPacer(1e9), guest, {});
    expect(make).toThrow(AssertionError);
  });
});
