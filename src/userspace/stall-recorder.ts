/**
 * Per-event latency samples from one vCPU thread (the single writer) to any reader, in shared
 * memory: the time from each KVM_EXIT_DIRTY_RING_FULL to the vCPU's next entry into KVM_RUN.
 * The last `capacity` samples are kept. Layout: Int32 count, padding, Float64 samples.
 */
const COUNT = 0;
/** The Int32 count, padded so that the Float64 samples start 8-aligned. */
const HEADER_BYTES = 8;

export class StallRecorder {
  private readonly count: Int32Array;
  private readonly ns: Float64Array;
  readonly capacity: number;

  static createBuffer(capacity: number): SharedArrayBuffer {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`bad capacity ${capacity}`);
    return new SharedArrayBuffer(HEADER_BYTES + capacity * Float64Array.BYTES_PER_ELEMENT);
  }

  constructor(buffer: SharedArrayBuffer) {
    this.count = new Int32Array(buffer, 0, 1);
    this.capacity = (buffer.byteLength - HEADER_BYTES) / Float64Array.BYTES_PER_ELEMENT;
    this.ns = new Float64Array(buffer, HEADER_BYTES, this.capacity);
  }

  /** Writer side: append one sample (ns). The sample is stored before the count is published. */
  record(ns: number): void {
    const n = Atomics.load(this.count, COUNT);
    this.ns[n % this.capacity] = ns;
    Atomics.store(this.count, COUNT, (n + 1) | 0);
  }

  /** Samples recorded so far (including those overwritten). */
  get recorded(): number {
    return Atomics.load(this.count, COUNT);
  }

  /** Reader side: the kept samples, oldest first, from index `from` of the stream on. */
  samples(from = 0): number[] {
    const n = Atomics.load(this.count, COUNT);
    const first = Math.max(from, n - this.capacity, 0);
    const out: number[] = [];
    for (let i = first; i < n; i++) out.push(this.ns[i % this.capacity]!);
    return out;
  }
}
