/**
 * The example user of page write-tracking: a shadow page table, as KVM's shadow MMU keeps one
 * when the guest's paging is not done by hardware (no EPT/NPT, or nested).
 *
 * The model keeps a byte copy of each guest page-table page it shadows. To keep the copy true
 * it write-tracks the page: every guest store to it then faults, is emulated, and reaches this
 * notifier in the storing vCPU's thread, which updates the copy. What KVM does, and so this:
 *  - shadowing a page: add write tracking first, then copy the page. Once the add has returned
 *    (TLBs flushed) every later store is emulated and notified, and any earlier one is visible
 *    to the copy, so no store falls between the two.
 *  - on a write: under the shadow's lock, re-read the written span (widened to whole 8-byte
 *    PTEs) from guest memory rather than trusting the notified bytes, as kvm_mmu_track_write
 *    re-fetches the gpte under mmu_lock. Two vCPUs storing to one PTE can have their
 *    notifications arrive in the other order; the later notification still reads the final
 *    bytes, so the copy converges. `REFETCH_DIFFERED` counts how often that mattered.
 *  - the notifier is told of every emulated write and filters by its own shadowed set, under
 *    its lock, not by the `tracked` hint: a write racing with the start of shadowing is then
 *    either seen by the copy or re-synced by its notification.
 *  - unshadowing: drop the page from the set, then remove tracking. Memslot removal
 *    (track_remove_region) drops the slot's pages; their counts vanished with the slot.
 * With every vCPU stopped, `verify` compares each shadowed page with the guest page byte for
 * byte: a store that bypassed emulation (a stale TLB entry, a fault that made a tracked page
 * writable) or a notification made before its store leaves a difference nothing repairs.
 */
import { PAGE_SIZE } from '../abi/constants.js';
import { KvmError } from '../abi/errno.js';
import { ShadowPageState, type ShadowPageTableBlock, ShadowPageTableLayout, shadowPageTableLayout } from './shadow-page-table-layout.js';
import { SharedBlock } from '../abi/layout.js';
import type { Memslot } from '../kernel/memslots.js';
import type { PageTrackNotifier, TrackNotifierSpec, TrackWriteInfo } from '../kernel/page-track-notifier.js';
import { SharedMutex } from '../kernel/sync.js';
import type { Vm } from '../kernel/vm.js';

export const SHADOW_PAGE_TABLE_KIND = 'shadow-page-table';
/** Bytes of one guest PTE (x86-64 / PAE): the unit the shadow re-fetches. */
export const PTE_BYTES = 8;

const S = ShadowPageTableLayout.words;
const SF = ShadowPageTableLayout.floats;

export interface ShadowMismatch {
  readonly gfn: number;
  /** First differing byte in the page. */
  readonly offset: number;
}

export interface ShadowStats {
  syncs: number;
  refetchDiffered: number;
  ignoredWrites: number;
  pagesShadowed: number;
  pagesUnshadowed: number;
  pagesDropped: number;
  removeRegions: number;
}

export class ShadowPageTable implements PageTrackNotifier {
  readonly block: ShadowPageTableBlock;
  readonly pageCount: number;
  private readonly gfns: Float64Array;
  private readonly states: Int32Array;
  private readonly pages: Uint8Array;
  private readonly indexOfGfn = new Map<number, number>();
  private readonly lock: SharedMutex;
  private lastSlot: Memslot | null = null;

  /** Shared state for a shadow of the guest pages `gfns` (distinct), none shadowed yet. */
  static allocate(gfns: readonly number[]): SharedArrayBuffer {
    if (new Set(gfns).size !== gfns.length) throw new KvmError('EINVAL', 'shadow page-table pages must be distinct', 'gfns');
    const layout = shadowPageTableLayout(gfns.length);
    const buffer = new SharedArrayBuffer(layout.bytes);
    const block = new SharedBlock(ShadowPageTableLayout, buffer, 0);
    Atomics.store(block.i32, S.PAGE_COUNT, gfns.length);
    new Float64Array(buffer, layout.gfnsOffset, gfns.length).set(gfns);
    return buffer;
  }

  constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly vm: Vm,
  ) {
    this.block = new SharedBlock(ShadowPageTableLayout, buffer, 0);
    this.pageCount = Atomics.load(this.block.i32, S.PAGE_COUNT);
    const layout = shadowPageTableLayout(this.pageCount);
    this.gfns = new Float64Array(buffer, layout.gfnsOffset, this.pageCount);
    this.states = new Int32Array(buffer, layout.statesOffset, this.pageCount);
    this.pages = new Uint8Array(buffer, layout.pagesOffset, this.pageCount * PAGE_SIZE);
    for (let i = 0; i < this.pageCount; i++) this.indexOfGfn.set(this.gfns[i]!, i);
    this.lock = new SharedMutex(this.block.i32, S.LOCK, 'shadow page table');
  }

  spec(): TrackNotifierSpec {
    return { kind: SHADOW_PAGE_TABLE_KIND, buffer: this.buffer };
  }

  gfn(index: number): number {
    return this.gfns[index]!;
  }

  isShadowed(index: number): boolean {
    return Atomics.load(this.states, index) === ShadowPageState.SHADOWED;
  }

  /** Start shadowing page `index`: write-track it, then copy it. */
  shadow(index: number): void {
    this.checkIndex(index);
    if (this.isShadowed(index)) throw new KvmError('EEXIST', `page 0x${this.gfn(index).toString(16)} is already shadowed`, 'index');
    const gfn = this.gfn(index);
    this.vm.pageTrack.addGfn(gfn);
    this.lock.lock();
    try {
      const slot = this.slotOf(gfn);
      if (slot === null) throw new KvmError('EINVAL', `gfn 0x${gfn.toString(16)} is in no memslot`, 'gfn');
      const from = (gfn - slot.baseGfn) * PAGE_SIZE;
      this.pages.set(slot.memBytes.subarray(from, from + PAGE_SIZE), index * PAGE_SIZE);
      Atomics.store(this.states, index, ShadowPageState.SHADOWED);
      this.block.f64[SF.PAGES_SHADOWED]! += 1;
    } finally {
      this.lock.unlock();
    }
  }

  /** Stop shadowing page `index`: forget it, then drop its write tracking. */
  unshadow(index: number): void {
    this.checkIndex(index);
    this.lock.lock();
    try {
      if (!this.isShadowed(index)) throw new KvmError('EINVAL', `page 0x${this.gfn(index).toString(16)} is not shadowed`, 'index');
      Atomics.store(this.states, index, ShadowPageState.NOT_SHADOWED);
      this.block.f64[SF.PAGES_UNSHADOWED]! += 1;
    } finally {
      this.lock.unlock();
    }
    this.vm.pageTrack.removeGfn(this.gfn(index));
  }

  // ------------------------------------------------------------------------------------------
  // The notifier

  trackWrite(gpa: number, bytes: Uint8Array, length: number, _info: TrackWriteInfo): void {
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const index = this.indexOfGfn.get(gfn);
    if (index === undefined) return; // not a page-table page of ours
    const f = this.block.f64;
    this.lock.lock();
    try {
      if (Atomics.load(this.states, index) !== ShadowPageState.SHADOWED) {
        f[SF.IGNORED_WRITES]! += 1;
        return;
      }
      const slot = this.slotOf(gfn);
      if (slot === null) return; // the slot is going away; track_remove_region follows
      const inPage = gpa - gfn * PAGE_SIZE;
      const end = Math.min(PAGE_SIZE, inPage + length);
      const guest = slot.memBytes;
      const guestBase = (gfn - slot.baseGfn) * PAGE_SIZE;
      const shadowBase = index * PAGE_SIZE;
      // Did a newer write overtake this one before we got the lock?
      for (let i = inPage; i < end; i++) {
        if (guest[guestBase + i] !== bytes[i - inPage]) {
          f[SF.REFETCH_DIFFERED]! += 1;
          break;
        }
      }
      const from = inPage - (inPage % PTE_BYTES);
      const to = Math.min(PAGE_SIZE, Math.ceil(end / PTE_BYTES) * PTE_BYTES);
      for (let i = from; i < to; i++) this.pages[shadowBase + i] = guest[guestBase + i]!;
      f[SF.SYNCS]! += 1;
    } finally {
      this.lock.unlock();
    }
  }

  trackRemoveRegion(baseGfn: number, pageCount: number): void {
    this.lock.lock();
    try {
      const f = this.block.f64;
      f[SF.REMOVE_REGIONS]! += 1;
      for (let i = 0; i < this.pageCount; i++) {
        const gfn = this.gfns[i]!;
        if (gfn >= baseGfn && gfn - baseGfn < pageCount && Atomics.load(this.states, i) === ShadowPageState.SHADOWED) {
          Atomics.store(this.states, i, ShadowPageState.NOT_SHADOWED);
          f[SF.PAGES_DROPPED]! += 1;
        }
      }
    } finally {
      this.lock.unlock();
    }
  }

  // ------------------------------------------------------------------------------------------

  /** With every writer stopped: shadowed pages whose copy differs from the guest page. */
  verify(): ShadowMismatch[] {
    const out: ShadowMismatch[] = [];
    this.lock.lock();
    try {
      for (let i = 0; i < this.pageCount; i++) {
        if (Atomics.load(this.states, i) !== ShadowPageState.SHADOWED) continue;
        const gfn = this.gfns[i]!;
        const slot = this.slotOf(gfn);
        if (slot === null) continue;
        const guest = slot.memBytes;
        const guestBase = (gfn - slot.baseGfn) * PAGE_SIZE;
        const shadowBase = i * PAGE_SIZE;
        for (let b = 0; b < PAGE_SIZE; b++) {
          if (guest[guestBase + b] !== this.pages[shadowBase + b]) {
            out.push({ gfn, offset: b });
            break;
          }
        }
      }
    } finally {
      this.lock.unlock();
    }
    return out;
  }

  shadowedCount(): number {
    let n = 0;
    for (let i = 0; i < this.pageCount; i++) if (this.isShadowed(i)) n++;
    return n;
  }

  stats(): ShadowStats {
    const f = this.block.f64;
    return {
      syncs: f[SF.SYNCS]!,
      refetchDiffered: f[SF.REFETCH_DIFFERED]!,
      ignoredWrites: f[SF.IGNORED_WRITES]!,
      pagesShadowed: f[SF.PAGES_SHADOWED]!,
      pagesUnshadowed: f[SF.PAGES_UNSHADOWED]!,
      pagesDropped: f[SF.PAGES_DROPPED]!,
      removeRegions: f[SF.REMOVE_REGIONS]!,
    };
  }

  private slotOf(gfn: number): Memslot | null {
    const last = this.lastSlot;
    if (last !== null && last.current && gfn >= last.baseGfn && gfn - last.baseGfn < last.pageCount) {
      return last;
    }
    const slot = this.vm.memslots.findByGfn(0, gfn);
    this.lastSlot = slot;
    return slot;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.pageCount) {
      throw new KvmError('EINVAL', `no shadow page ${index} (the shadow holds ${this.pageCount})`, 'index');
    }
  }
}
