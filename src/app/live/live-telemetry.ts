/**
 * What the live run's worker publishes for the page besides the VM's own shared memory: the
 * collection activity (activity-log.ts), the pages reported so far this iteration (a copy of the
 * oracle's map after every collection), each ring's fetch index, and the counters behind the
 * charts. Written by the worker after each collection and iteration, read by the page when it
 * draws — never a message per event.
 *
 *   reported: Uint8 per page   fetch: Int32 per vCPU   counters: Float64 × COUNTERS
 */
import { ActivityLog, type ActivityBuffers } from './activity-log.js';

export const Counter = { RECORDS: 0, FALSE_POSITIVES: 1, ITERATION: 2 } as const;
const COUNTERS = 3;

export interface TelemetryBuffers {
  readonly activity: ActivityBuffers;
  readonly reported: SharedArrayBuffer;
  readonly fetch: SharedArrayBuffer;
  readonly counters: SharedArrayBuffer;
}

export class LiveTelemetry {
  readonly activity: ActivityLog;
  readonly reported: Uint8Array;
  readonly fetch: Int32Array;
  readonly counters: Float64Array;

  constructor(readonly buffers: TelemetryBuffers) {
    this.activity = new ActivityLog(buffers.activity);
    this.reported = new Uint8Array(buffers.reported);
    this.fetch = new Int32Array(buffers.fetch);
    this.counters = new Float64Array(buffers.counters);
  }

  static allocate(pageCount: number, vcpus: number): LiveTelemetry {
    return new LiveTelemetry({
      activity: new ActivityLog().buffers,
      reported: new SharedArrayBuffer(pageCount),
      fetch: new SharedArrayBuffer(vcpus * Int32Array.BYTES_PER_ELEMENT),
      counters: new SharedArrayBuffer(COUNTERS * Float64Array.BYTES_PER_ELEMENT),
    });
  }
}
