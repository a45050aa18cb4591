/**
 * Page-track notifications for userspace: a notifier that forwards every write to a
 * write-tracked page into a ring in shared memory, and the reader userspace drains them with.
 *
 * Shape. One ring per vCPU plus one for memslot ioctls (track_remove_region), each with a
 * single producer — the vCPU's own thread; ioctl producers take IOCTL_LOCK — and a single
 * consumer, userspace. The producer writes the entry with plain stores and then publishes it by
 * storing HEAD; the reader loads HEAD, reads the entries, then stores TAIL. Every entry also
 * carries a VM-wide sequence number taken (fetch-and-add) just before it is written.
 *
 * Order. Each ring is FIFO: userspace receives a vCPU's notifications in the order that vCPU
 * made its writes. Across vCPUs the sequence numbers give the order in which notifications were
 * made — not necessarily the order of two racing writes to the same bytes, which the kernel does
 * not know either (its notifiers run after the write, outside any lock that orders writes).
 * Sorting a complete drain by sequence number gives a total order consistent with every vCPU's.
 *
 * No loss: a push is never refused. Full/stall rule, modelled on the dirty ring's soft-full:
 *  - after a push that leaves `used ≥ entries − TRACK_RING_RESERVED_ENTRIES`, the producer
 *    requests VcpuRequest.TRACK_RING_FULL; at its next guest entry KVM_RUN returns
 *    EMU_EXIT_TRACK_RING_FULL and the vCPU thread stalls (state RING_FULL_STALL) until
 *    userspace has drained and woken it — exactly as for exit 31;
 *  - the reserve covers the notifications one instruction can make before that entry (a burst
 *    of MAX_INSN_PAGES pages, each at most two writes), so the ring does not fill up in between;
 *  - if a ring is nevertheless completely full (an instruction storing more often than the
 *    reserve allows, or an ioctl producer that userspace does not drain), the producer waits
 *    for userspace to drain, in bounded slices; after KERNEL_WAIT_TIMEOUT_MS it fails loudly
 *    (a WaitTimeoutError ends the vCPU thread) rather than drop a notification.
 * A drain made while every producer is quiet (vCPUs parked) receives exactly as many
 * notifications as sequence numbers were taken: `TrackRingReader.lost()` checks that.
 */
import { KvmError } from '../abi/errno.js';
import { SharedBlock } from '../abi/layout.js';
import { TRACK_RING_DATA_BYTES, TRACK_RING_ENTRY_WORDS, type TrackRingBlock, TrackRingEntryKind, TrackRingEntryWords, TrackRingLayout, type TrackRingSetBlock, TrackRingSetLayout, trackRingSetLayout } from './notification-ring-layout.js';
import { VcpuLayout, VcpuRequest } from '../kernel/vcpu-layout.js';
import { MAX_INSN_PAGES } from '../guest/instruction.js';
import type { PageTrackNotifier, TrackNotifierSpec, TrackWriteInfo } from '../kernel/page-track-notifier.js';
import { KERNEL_WAIT_TIMEOUT_MS, SharedMutex, WaitTimeoutError, waitWhileEqual } from '../kernel/sync.js';
import { now } from '../base/clock.js';
import type { Vm } from '../kernel/vm.js';

export const NOTIFICATION_RING_KIND = 'notification-ring';
/**
 * Entries kept free after the soft limit: twice one instruction's worst case, which is an
 * emulated burst notifying two writes (header, data word) for each of MAX_INSN_PAGES pages.
 */
export const TRACK_RING_RESERVED_ENTRIES = 4 * MAX_INSN_PAGES;
export const TRACK_RING_MIN_ENTRIES = 2 * TRACK_RING_RESERVED_ENTRIES;
export const TRACK_RING_MAX_ENTRIES = 65536;
export const TRACK_RING_DEFAULT_ENTRIES = 4096;

const H = TrackRingSetLayout.words;
const R = TrackRingLayout.words;
const RF = TrackRingLayout.floats;
const E = TrackRingEntryWords;
/** A gpa is stored as two u32 halves. */
const U32_RANGE = 2 ** 32;
const WORD_BYTES = Uint32Array.BYTES_PER_ELEMENT;
/**
 * One blocking wait of a vCPU on a ring full to the last entry, between two looks at TAIL:
 * userspace notifies TAIL when it drains, so this only bounds a lost wake-up.
 */
const HARD_FULL_WAIT_SLICE_MS = 50;

/** Validate a ring size in entries (a power of two in [TRACK_RING_MIN_ENTRIES, 65536]). */
export function validateTrackRingEntries(entries: number): number {
  if (!Number.isInteger(entries) || entries <= 0 || (entries & (entries - 1)) !== 0) {
    throw new KvmError('EINVAL', `notification ring size ${entries} is not a power of two`, 'entries');
  }
  if (entries < TRACK_RING_MIN_ENTRIES || entries > TRACK_RING_MAX_ENTRIES) {
    throw new KvmError('EINVAL', `notification ring size must be between ${TRACK_RING_MIN_ENTRIES} and ${TRACK_RING_MAX_ENTRIES} entries`, 'entries');
  }
  return entries;
}

/** Views of a ring set's buffer; any thread. */
export class TrackRingSet {
  readonly header: TrackRingSetBlock;
  readonly rings: TrackRingBlock[] = [];
  /** All entries of all rings, as u32 words (ring r's entry i at (r·entries + i)·ENTRY_WORDS). */
  readonly entryWords: Uint32Array;
  /** The same memory as bytes, for the written data. */
  readonly entryBytes: Uint8Array;
  readonly ringCount: number;
  readonly entries: number;
  readonly mask: number;
  readonly softLimit: number;

  /** Rings for `vcpus` vCPUs plus the ioctl ring. */
  static allocate(vcpus: number, entries: number): SharedArrayBuffer {
    validateTrackRingEntries(entries);
    if (!Number.isInteger(vcpus) || vcpus < 1) throw new KvmError('EINVAL', `bad vCPU count ${vcpus}`, 'vcpus');
    const ringCount = vcpus + 1;
    const buffer = new SharedArrayBuffer(trackRingSetLayout(ringCount, entries).bytes);
    const header = new SharedBlock(TrackRingSetLayout, buffer, 0);
    Atomics.store(header.i32, H.RING_COUNT, ringCount);
    Atomics.store(header.i32, H.ENTRIES, entries);
    return buffer;
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.header = new SharedBlock(TrackRingSetLayout, buffer, 0);
    this.ringCount = Atomics.load(this.header.i32, H.RING_COUNT);
    this.entries = Atomics.load(this.header.i32, H.ENTRIES);
    this.mask = this.entries - 1;
    this.softLimit = this.entries - TRACK_RING_RESERVED_ENTRIES;
    const layout = trackRingSetLayout(this.ringCount, this.entries);
    for (let r = 0; r < this.ringCount; r++) {
      this.rings.push(new SharedBlock(TrackRingLayout, buffer, layout.ringsOffset + r * TrackRingLayout.bytes));
    }
    this.entryWords = new Uint32Array(buffer, layout.entriesOffset, this.ringCount * this.entries * TRACK_RING_ENTRY_WORDS);
    this.entryBytes = new Uint8Array(buffer, layout.entriesOffset, this.entryWords.byteLength);
  }

  /** The ring that memslot ioctls push to (the last one). */
  get ioctlRing(): number {
    return this.ringCount - 1;
  }

  /** Word index of entry `index` (free-running) of ring `r`. */
  entryWord(r: number, index: number): number {
    return (r * this.entries + (index & this.mask)) * TRACK_RING_ENTRY_WORDS;
  }

  /** Notifications made so far (sequence numbers taken). */
  get sequence(): number {
    return Atomics.load(this.header.i32, H.SEQ) >>> 0;
  }

  spec(): TrackNotifierSpec {
    return { kind: NOTIFICATION_RING_KIND, buffer: this.buffer };
  }
}

/**
 * The producer: a page-track notifier forwarding writes to write-tracked pages (and memslot
 * removals) to userspace. One instance per thread; each pushes only to its own ring.
 */
export class NotificationRingNotifier implements PageTrackNotifier {
  private readonly set: TrackRingSet;
  private readonly ioctlLock: SharedMutex;

  constructor(
    spec: TrackNotifierSpec,
    private readonly vm: Vm,
  ) {
    this.set = new TrackRingSet(spec.buffer);
    this.ioctlLock = new SharedMutex(this.set.header.i32, H.IOCTL_LOCK, 'notification ioctl ring');
  }

  trackWrite(gpa: number, bytes: Uint8Array, length: number, info: TrackWriteInfo): void {
    // Userspace asked for writes to tracked pages; other emulated writes are not its business.
    if (!info.tracked) return;
    const r = info.vcpuIndex;
    if (r >= this.set.ioctlRing) throw new KvmError('EINVAL', `vCPU ${r} has no notification ring`, 'vcpu');
    this.push(r, TrackRingEntryKind.WRITE, r, gpa, length, bytes);
  }

  trackRemoveRegion(baseGfn: number, pageCount: number): void {
    this.ioctlLock.with(() => this.push(this.set.ioctlRing, TrackRingEntryKind.REMOVE_REGION, -1, baseGfn, pageCount, null));
  }

  private push(r: number, kind: number, vcpu: number, addr: number, length: number, bytes: Uint8Array | null): void {
    const set = this.set;
    const ring = set.rings[r]!;
    const ctl = ring.i32;
    const head = Atomics.load(ctl, R.HEAD) >>> 0; // this producer is HEAD's only writer
    let tail = Atomics.load(ctl, R.TAIL) >>> 0;
    if (((head - tail) >>> 0) >= set.entries) {
      ring.f64[RF.HARD_FULL_WAITS]! += 1;
      const deadline = now() + KERNEL_WAIT_TIMEOUT_MS;
      while (((head - tail) >>> 0) >= set.entries) {
        if (now() >= deadline) {
          throw new WaitTimeoutError(`notification ring ${r} full: userspace is not draining it`, KERNEL_WAIT_TIMEOUT_MS);
        }
        waitWhileEqual(ctl, R.TAIL, tail | 0, HARD_FULL_WAIT_SLICE_MS);
        tail = Atomics.load(ctl, R.TAIL) >>> 0;
      }
    }
    const seq = Atomics.add(set.header.i32, H.SEQ, 1);
    const words = set.entryWords;
    const e = set.entryWord(r, head);
    words[e + E.SEQ] = seq;
    words[e + E.KIND] = kind;
    words[e + E.VCPU] = vcpu;
    words[e + E.ADDR_LO] = addr % U32_RANGE;
    words[e + E.ADDR_HI] = Math.floor(addr / U32_RANGE);
    words[e + E.LENGTH] = length;
    const data = (e + E.DATA) * WORD_BYTES;
    const out = set.entryBytes;
    const n = bytes === null ? 0 : Math.min(length, TRACK_RING_DATA_BYTES);
    for (let i = 0; i < TRACK_RING_DATA_BYTES; i++) out[data + i] = i < n ? bytes![i]! : 0;
    // Publish: the entry's plain stores happen before HEAD moves (release).
    Atomics.store(ctl, R.HEAD, (head + 1) | 0);
    ring.f64[RF.PUSHES]! += 1;
    if (r !== set.ioctlRing && ((head + 1 - tail) >>> 0) >= set.softLimit) {
      ring.f64[RF.SOFT_FULL_REQUESTS]! += 1;
      Atomics.or(this.vm.vcpuBlock(r).i32, VcpuLayout.words.REQUESTS, VcpuRequest.TRACK_RING_FULL);
    }
  }
}

/** One received notification; the reader reuses one object for all of them. */
export interface TrackNotification {
  kind: number;
  seq: number;
  /** The ring it came from (a vCPU index, or the ioctl ring). */
  ring: number;
  /** The writing vCPU, or -1. */
  vcpu: number;
  /** WRITE: gpa. REMOVE_REGION: base gfn. */
  addr: number;
  /** WRITE: bytes written. REMOVE_REGION: pages. */
  length: number;
  /** The first TRACK_RING_DATA_BYTES written bytes, as u32 words. */
  readonly data: Uint32Array;
}

export type TrackNotificationSink = (n: TrackNotification) => void;

/** The consumer, in userspace: drains every ring in order and checks order and loss. */
export class TrackRingReader {
  readonly set: TrackRingSet;
  private readonly lastSeq: Float64Array;
  private readonly view: TrackNotification = {
    kind: 0,
    seq: 0,
    ring: 0,
    vcpu: 0,
    addr: 0,
    length: 0,
    data: new Uint32Array(TRACK_RING_DATA_BYTES / WORD_BYTES),
  };
  /** Notifications received. */
  received = 0;
  writes = 0;
  removeRegions = 0;
  /** Entries whose sequence number did not increase along their ring. */
  orderErrors = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.set = new TrackRingSet(buffer);
    this.lastSeq = new Float64Array(this.set.ringCount).fill(-1);
  }

  /** Deliver every published entry, ring by ring, each in FIFO order. Returns how many. */
  drain(sink: TrackNotificationSink): number {
    const set = this.set;
    const words = set.entryWords;
    const v = this.view;
    let n = 0;
    for (let r = 0; r < set.ringCount; r++) {
      const ctl = set.rings[r]!.i32;
      const head = Atomics.load(ctl, R.HEAD) >>> 0; // acquire: the entries before it are written
      let tail = Atomics.load(ctl, R.TAIL) >>> 0;
      if (head === tail) continue;
      for (; tail !== head; tail = (tail + 1) >>> 0) {
        const e = set.entryWord(r, tail);
        v.seq = words[e + E.SEQ]!;
        v.kind = words[e + E.KIND]!;
        v.vcpu = words[e + E.VCPU]! | 0;
        v.addr = words[e + E.ADDR_HI]! * U32_RANGE + words[e + E.ADDR_LO]!;
        v.length = words[e + E.LENGTH]!;
        v.ring = r;
        for (let i = 0; i < v.data.length; i++) v.data[i] = words[e + E.DATA + i]!;
        const last = this.lastSeq[r]!;
        if (last >= 0 && ((v.seq - last) | 0) <= 0) this.orderErrors++;
        this.lastSeq[r] = v.seq;
        if (v.kind === TrackRingEntryKind.WRITE) this.writes++;
        else this.removeRegions++;
        this.received++;
        n++;
        sink(v);
      }
      // Release the entries back to the producer, and wake it if it waits for room.
      Atomics.store(ctl, R.TAIL, tail | 0);
      Atomics.notify(ctl, R.TAIL);
    }
    return n;
  }

  /**
   * Notifications made but not received. Exact when no producer is between taking its sequence
   * number and publishing (every vCPU parked, no ioctl running): then it must be 0.
   */
  lost(): number {
    return this.set.sequence - this.received;
  }

  /** Producer-side statistics summed over all rings. */
  ringStats(): { pushes: number; softFullRequests: number; hardFullWaits: number } {
    let pushes = 0;
    let softFullRequests = 0;
    let hardFullWaits = 0;
    for (const ring of this.set.rings) {
      pushes += ring.f64[RF.PUSHES]!;
      softFullRequests += ring.f64[RF.SOFT_FULL_REQUESTS]!;
      hardFullWaits += ring.f64[RF.HARD_FULL_WAITS]!;
    }
    return { pushes, softFullRequests, hardFullWaits };
  }
}
