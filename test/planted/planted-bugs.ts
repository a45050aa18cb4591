/**
 * One protocol bug per edge state (src/stress/coverage/edge-states.ts), planted so that it only
 * does harm when a run reaches that state: a push into ring entry 0 that records the wrong
 * page, a legacy GET that loses a bit of a high half, a CLEAR that leaves the pages of a slot's
 * last chunk writable, a reset that forgets to re-protect SMRAM... Each is written for the
 * coverage tests, here and nowhere else: no CLI flag or mutant switch reaches them. A test
 * plants one in its own thread (free runs' userspace) with `plant`, and in worker threads
 * through the test worker entries, which plant the one DIRTYRING_PLANTED_BUG names.
 */
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, SMM_AS_ID, slotAsId, slotId } from '../../src/abi/constants.js';
import { DirtyRing, harvestRing } from '../../src/kernel/dirty-ring.js';
import { DirtyLogIoctl } from '../../src/kernel/dirty-log-ioctl.js';
import { SpteBits } from '../../src/kernel/memslot-layout.js';
import type { Memslot } from '../../src/kernel/memslots.js';
import type { ResetBatch } from '../../src/kernel/reset-batch.js';
import { RingReset } from '../../src/kernel/ring-reset.js';
import { Step, stepHook } from '../../src/kernel/step-hook.js';
import { TrackedWriteEmulator } from '../../src/kernel/tracked-write.js';
import { VcpuLayout, VcpuRequest } from '../../src/kernel/vcpu-layout.js';
import { VcpuMmu } from '../../src/kernel/vcpu-mmu.js';
import type { VmCore } from '../../src/kernel/vm-core.js';
import { NotificationRingNotifier } from '../../src/pagetrack/notification-ring.js';
import { TrackRingLayout } from '../../src/pagetrack/notification-ring-layout.js';
import { RingCollector } from '../../src/userspace/ring-collector.js';
import { REAPER_FETCH_WORD } from '../../src/userspace/reaper-layout.js';
import { SharedReaper } from '../../src/userspace/self-reaper.js';
import { type Join, type Method, type Undo, batchProxy, joinOf, patchMethod, undoAll } from './patch.js';

const WRITABLE = SpteBits.WRITABLE;
const REQUESTS = VcpuLayout.words.REQUESTS;
const PAGES_PER_WORD = 64;

/** What the vCPU bugs reach of a VcpuMmu. */
interface VcpuInternals {
  readonly ring: DirtyRing | null;
  softFullRequested: boolean;
  readonly vm: VmCore;
  readonly vcpuWords: Int32Array;
  readonly tlb: { lookup(gfn: number): Memslot | null; pageOf(gfn: number): number };
}

type IndexTest = (index: number, size: number) => boolean;
const firstEntry: IndexTest = (i, size) => (i & (size - 1)) === 0;
const lastEntry: IndexTest = (i, size) => (i & (size - 1)) === size - 1;
const pastLap: IndexTest = (i, size) => i >>> 0 >= size;

/** markPageDirty, replaced by `bug(original, vcpu, slot, page)`. */
function onRecord(bug: (original: Method, vcpu: VcpuInternals, slot: Memslot, page: number) => void): Undo {
  return patchMethod(VcpuMmu.prototype, 'markPageDirty', (original) =>
    function (this: VcpuInternals, slot: Memslot, page: number) {
      bug(original, this, slot, page);
    },
  );
}

/** A push into an entry `at` picks records the next page instead: the page written goes unreported. */
function pushWrongPage(at: IndexTest): Undo {
  return onRecord((original, vcpu, slot, page) => {
    const ring = vcpu.ring;
    const wrong = ring !== null && slot.logDirty && at(ring.dirtyIndexShared, ring.size);
    original.call(vcpu, slot, wrong ? (page + 1) % slot.pageCount : page);
  });
}

/** The harvester marks the entries `at` picks RESET but never hands them on. */
function harvestDrops(at: IndexTest): Undo {
  return undoAll([collectorHarvestDrops(at), reaperHarvestDrops(at)]);
}

/** The hand-off design's harvest loop (userspace's RingCollector). */
function collectorHarvestDrops(at: IndexTest): Undo {
  return patchMethod(RingCollector.prototype, 'harvestEntries', () =>
    function (this: { vcpuCount: number; rings: { entryCount: number }[]; cursors: { fetchIndex: number }[]; harvestedTotal: number }, sink: Method) {
      let n = 0;
      for (let i = 0; i < this.vcpuCount; i++) {
        const ring = this.rings[i]! as Parameters<typeof harvestRing>[0];
        let index = this.cursors[i]!.fetchIndex;
        n += harvestRing(ring, this.cursors[i]!, Number.MAX_SAFE_INTEGER, (slot, lo, hi) => {
          if (!at(index++ >>> 0, ring.entryCount)) sink(slot, lo, hi);
        });
      }
      this.harvestedTotal += n;
      return n;
    },
  );
}

/**
 * The self-reap design's harvest loop (SharedReaper, in the vCPU threads and in userspace): the
 * dropped entry is still counted as harvested (it was marked RESET), as in the loop above.
 */
function reaperHarvestDrops(at: IndexTest): Undo {
  type Reaper = { i32: Int32Array; cursor: { fetchIndex: number }; harvestedNow: number; ringOf(vcpu: number): Parameters<typeof harvestRing>[0]; sink: Method };
  return patchMethod(SharedReaper.prototype, 'harvestOne', () =>
    function (this: Reaper, vcpu: number) {
      const c = this.cursor;
      c.fetchIndex = Atomics.load(this.i32, REAPER_FETCH_WORD + vcpu) >>> 0;
      const ring = this.ringOf(vcpu);
      let index = c.fetchIndex;
      harvestRing(ring, c, Number.MAX_SAFE_INTEGER, (slot, lo, hi) => {
        if (!at(index++ >>> 0, ring.entryCount)) this.sink(slot, lo, hi);
        else this.harvestedNow++;
      });
      Atomics.store(this.i32, REAPER_FETCH_WORD + vcpu, c.fetchIndex | 0);
    },
  );
}

/** The reset walk, with its batch behind `proxy(batch, ring)`. */
function onResetWalk(proxy: (batch: ResetBatch, ring: DirtyRing) => ResetBatch): Undo {
  return patchMethod(DirtyRing.prototype, 'resetWalk', (original) =>
    function (this: DirtyRing, batch: ResetBatch, ...rest: unknown[]) {
      return original.call(this, proxy(batch, this), ...rest);
    },
  );
}

/** The reset consumes the entries `at` picks without re-protecting their pages. */
function resetSkips(at: IndexTest): Undo {
  return onResetWalk((batch, ring) => {
    let index = ring.resetIndexShared;
    return batchProxy(batch, () => !at(index++ >>> 0, ring.size));
  });
}

/** Coalescing gets entries that join the batch as `join` wrong: a forward or backward merge drops the entry, a break drops the old batch. */
function coalescingLoses(join: Join): Undo {
  return onResetWalk((batch) =>
    batchProxy(batch, (b, slot, lo, hi) => {
      if (joinOf(b, slot, lo, hi) !== join) return true;
      if (join === 'forward' || join === 'backward') return false;
      b.open = false;
      return true;
    }),
  );
}

/** A reset batch flushed with `bug` applied to its (slot, offset, mask). */
function onResetBatch(bug: (original: Method, self: RingReset, slot: number, lo: number, hi: number, maskLo: number, maskHi: number) => void): Undo {
  return patchMethod(RingReset.prototype, 'resetDirtyGfn', (original) =>
    function (this: RingReset, slot: number, lo: number, hi: number, maskLo: number, maskHi: number) {
      bug(original, this, slot, lo, hi, maskLo, maskHi);
    },
  );
}

/** Which 32-bit words of a slot's bitmap a bitmap bug touches. */
type WordTest = (word: number, slot: Memslot) => boolean;
const kernelWords = (slot: Memslot): number => Math.ceil(slot.pageCount / PAGES_PER_WORD);
const WORDS: Record<'low-half' | 'high-half' | 'first-word' | 'last-word' | 'odd-tail', WordTest> = {
  'low-half': (w) => (w & 1) === 0,
  'high-half': (w) => (w & 1) === 1,
  'first-word': (w, s) => kernelWords(s) > 1 && w >>> 1 === 0,
  'last-word': (w, s) => kernelWords(s) > 1 && w >>> 1 === kernelWords(s) - 1,
  'odd-tail': (w, s) => s.pageCount % PAGES_PER_WORD !== 0 && w >>> 1 === kernelWords(s) - 1,
};

function slotOf(vm: VmCore, slotEnc: number): Memslot | null {
  return vm.memslots.findById(slotAsId(slotEnc), slotId(slotEnc));
}

/** Legacy GET hands userspace the words `at` picks without their lowest bit (taken and protected all the same). */
function getLosesBit(at: WordTest): Undo {
  return patchMethod(DirtyLogIoctl.prototype, 'getDirtyLog', (original) =>
    function (this: { vm: VmCore }, slotEnc: number, out: Uint32Array | null) {
      original.call(this, slotEnc, out);
      const slot = slotOf(this.vm, slotEnc);
      if (out === null || slot === null || (this.vm.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) return;
      for (let w = 0; w < out.length; w++) if (out[w] !== 0 && at(w, slot)) out[w] = (out[w]! & (out[w]! - 1)) >>> 0;
    },
  );
}

/** CLEAR clears the bits of the pages `pick` names but leaves those pages writable. */
function clearLeavesWritable(pick: (slot: Memslot, first: number, num: number, rel: number) => boolean): Undo {
  return patchMethod(DirtyLogIoctl.prototype, 'clearDirtyLog', (original) =>
    function (this: { vm: VmCore }, slotEnc: number, first: number, num: number, mask: Uint32Array | null) {
      const slot = slotOf(this.vm, slotEnc);
      const pages: number[] = [];
      for (let rel = 0; slot !== null && mask !== null && rel < num; rel++) {
        if ((mask[rel >>> 5]! & (1 << (rel & 31))) !== 0 && pick(slot, first, num, rel)) pages.push(first + rel);
      }
      original.call(this, slotEnc, first, num, mask);
      for (const p of pages) Atomics.or(slot!.spte, p, WRITABLE);
    },
  );
}

const clearWords = (at: WordTest): Undo => clearLeavesWritable((slot, first, _num, rel) => at((first + rel) >>> 5, slot));

/** A legacy GET of an SMRAM slot leaves its pages writable. */
function smmGetLeavesWritable(): Undo {
  return patchMethod(DirtyLogIoctl.prototype, 'getDirtyLog', (original) =>
    function (this: { vm: VmCore }, slotEnc: number, out: Uint32Array | null) {
      original.call(this, slotEnc, out);
      const slot = slotOf(this.vm, slotEnc);
      if (out === null || slot === null || slot.asId !== SMM_AS_ID || (this.vm.manualProtect & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) !== 0) return;
      for (let p = 0; p < slot.pageCount; p++) if ((out[p >>> 5]! & (1 << (p & 31))) !== 0) Atomics.or(slot.spte, p, WRITABLE);
    },
  );
}

/**
 * The vCPU acknowledges a TLB flush that waits for it before its store through a stale entry
 * lands (and without flushing): the flusher returns, userspace copies the page, then the store
 * lands. In a controlled run the vCPU parks once more between the two; a free one lingers.
 */
function staleStoreAfterAck(): Undo {
  const LINGER_MS = 0.5;
  return patchMethod(VcpuMmu.prototype, 'hardwareStore', (original) =>
    function (this: VcpuInternals, gfn: number, value: number) {
      const slot = this.tlb.lookup(gfn);
      const w = this.vcpuWords;
      if (slot !== null && (Atomics.load(slot.spte, this.tlb.pageOf(gfn)) & WRITABLE) === 0 && (Atomics.load(w, REQUESTS) & VcpuRequest.TLB_FLUSH) !== 0) {
        Atomics.and(w, REQUESTS, ~VcpuRequest.TLB_FLUSH);
        Atomics.notify(w, VcpuLayout.words.MODE);
        if (stepHook.active) stepHook.at(Step.GUEST_STORE, gfn, value);
        for (const t0 = performance.now(); performance.now() - t0 < LINGER_MS; );
      }
      return original.call(this, gfn, value);
    },
  );
}

/** The notification that fills a vCPU's notification ring is dropped (the exit still comes). */
function trackRingDropsLast(): Undo {
  const R = TrackRingLayout.words;
  return patchMethod(NotificationRingNotifier.prototype, 'trackWrite', (original) =>
    function (this: { set: { rings: { i32: Int32Array }[]; softLimit: number; ioctlRing: number }; vm: VmCore }, gpa: number, bytes: Uint8Array, length: number, info: { tracked: boolean; vcpuIndex: number }) {
      const ring = this.set.rings[info.vcpuIndex];
      if (info.tracked && ring !== undefined && info.vcpuIndex !== this.set.ioctlRing) {
        const used = (Atomics.load(ring.i32, R.HEAD) - Atomics.load(ring.i32, R.TAIL)) >>> 0;
        if (used + 1 >= this.set.softLimit) {
          Atomics.or(this.vm.vcpuBlock(info.vcpuIndex).i32, REQUESTS, VcpuRequest.TRACK_RING_FULL);
          return;
        }
      }
      original.call(this, gpa, bytes, length, info);
    },
  );
}

/** Every planted bug, by the id of the edge state it hides behind. */
export const PLANTED_BUGS: Readonly<Record<string, () => Undo>> = {
  'ring.push.first-entry': () => pushWrongPage(firstEntry),
  'ring.push.last-entry': () => pushWrongPage(lastEntry),
  'ring.push.lap': () => pushWrongPage(pastLap),
  'ring.harvest.first-entry': () => harvestDrops(firstEntry),
  'ring.harvest.last-entry': () => harvestDrops(lastEntry),
  'ring.harvest.lap': () => harvestDrops(pastLap),
  'ring.reset.first-entry': () => resetSkips(firstEntry),
  'ring.reset.last-entry': () => resetSkips(lastEntry),
  'ring.reset.lap': () => resetSkips(pastLap),
  // The request of the push that reaches the soft limit is lost: the vCPU runs on into a full ring.
  'ring.soft-full': () =>
    onRecord((original, vcpu, slot, page) => {
      const before = vcpu.softFullRequested;
      original.call(vcpu, slot, page);
      if (!before) vcpu.softFullRequested = false;
    }),
  // A walk that stops at an entry userspace has not released yet steps past it as well.
  'ring.reset-mid-ring': () =>
    patchMethod(DirtyRing.prototype, 'resetWalk', (original) =>
      function (this: DirtyRing, ...args: unknown[]) {
        const count = original.call(this, ...args) as number;
        const at = this.resetIndexShared;
        if (count > 0 && at !== this.dirtyIndexShared) Atomics.store(this.vcpu.i32, VcpuLayout.words.RESET_INDEX, (at + 1) | 0);
        return count;
      },
    ),
  'coalescing.merge-forward': () => coalescingLoses('forward'),
  'coalescing.merge-backward': () => coalescingLoses('backward'),
  'coalescing.mask-high-half': () => onResetBatch((original, self, slot, lo, hi, maskLo) => original.call(self, slot, lo, hi, maskLo, 0)),
  'coalescing.break-slot': () => coalescingLoses('break-slot'),
  'coalescing.break-far': () => coalescingLoses('break-far'),
  // set_bit_le on the neighbouring page, in one half of the word.
  'bitmap.set.low-half': () =>
    onRecord((original, vcpu, slot, page) => original.call(vcpu, slot, vcpu.ring === null && (page & 32) === 0 ? page ^ 1 : page)),
  'bitmap.set.high-half': () =>
    onRecord((original, vcpu, slot, page) => original.call(vcpu, slot, vcpu.ring === null && (page & 32) !== 0 ? page ^ 1 : page)),
  'bitmap.get.low-half': () => getLosesBit(WORDS['low-half']),
  'bitmap.get.high-half': () => getLosesBit(WORDS['high-half']),
  'bitmap.get.first-word': () => getLosesBit(WORDS['first-word']),
  'bitmap.get.last-word': () => getLosesBit(WORDS['last-word']),
  'bitmap.get.odd-tail': () => getLosesBit(WORDS['odd-tail']),
  'bitmap.clear.low-half': () => clearWords(WORDS['low-half']),
  'bitmap.clear.high-half': () => clearWords(WORDS['high-half']),
  'bitmap.clear.first-word': () => clearWords(WORDS['first-word']),
  'bitmap.clear.last-word': () => clearWords(WORDS['last-word']),
  'bitmap.clear.odd-tail': () => clearWords(WORDS['odd-tail']),
  'clear.chunk-first-page': () => clearLeavesWritable((_s, first, _num, rel) => first > 0 && rel === 0),
  'clear.chunk-last-page': () => clearLeavesWritable((s, first, num, rel) => first + num < s.pageCount && rel === num - 1),
  'clear.slot-end-chunk': () => clearLeavesWritable((s, first, num) => first > 0 && first + num === s.pageCount),
  // Records of any memslot but the VM's first are dropped.
  'memslots.second-slot': () =>
    onRecord((original, vcpu, slot, page) => {
      if (slot.asId === 0 && slot.tableIndex > 0) return;
      original.call(vcpu, slot, page);
    }),
  // Records of SMRAM go to the address-space-0 slot of the same id.
  'memslots.smm-record': () =>
    onRecord((original, vcpu, slot, page) => {
      if (slot.asId !== SMM_AS_ID) return original.call(vcpu, slot, page);
      const twin = vcpu.vm.memslots.findById(0, slot.id);
      if (twin !== null && page < twin.pageCount) original.call(vcpu, twin, page);
    }),
  'memslots.smm-reprotect': () =>
    undoAll([
      onResetBatch((original, self, slot, lo, hi, maskLo, maskHi) => {
        if (slotAsId(slot) !== SMM_AS_ID) original.call(self, slot, lo, hi, maskLo, maskHi);
      }),
      smmGetLeavesWritable(),
      clearLeavesWritable((s) => s.asId === SMM_AS_ID),
    ]),
  'tlb.stale-store-while-flush-waits': staleStoreAfterAck,
  // A tracked store is written and recorded, but its notification never goes out.
  'page-track.tracked-store': () => patchMethod(TrackedWriteEmulator.prototype, 'notify', () => () => undefined),
  'page-track.ring-full-exit': trackRingDropsLast,
};

/** Plant the bug of edge state `id` in this thread; returns the undo. */
export function plant(id: string): Undo {
  const make = PLANTED_BUGS[id];
  if (make === undefined) throw new Error(`no planted bug for edge state ${id}`);
  return make();
}
