/**
 * The numbering of a VM's modelled locations and synchronization objects, the same in every
 * thread that attaches the VM (the order is the VM's: vCPUs in index order, then memslots in
 * table order):
 *  - per vCPU ring: its entries' flags, slots, offsets, then dirty_index and reset_index
 *    (dirty-ring-wmm.ts);
 *  - per memslot: one SPTE per page, then one location per live bitmap word (mmu-wmm.ts);
 *  - sync objects: mmu_lock and slots_lock, then whatever control words the caller adds
 *    (a scheduler's waits) with `addSyncWord`.
 */
import { bitmapBytes } from '../memslots.js';
import { ringLocationCount } from '../dirty-ring-wmm.js';
import type { VmCore } from '../vm-core.js';
import { VmLayout } from '../vm-layout.js';

const WORD_BYTES = Int32Array.BYTES_PER_ELEMENT;

/** A contiguous run of locations: a vCPU's ring, a memslot's SPTEs, a memslot's bitmap. */
export interface WmmRegion {
  readonly kind: 'ring' | 'spte' | 'bitmap' | 'shared';
  /** The vCPU (ring) or the memslot id (spte, bitmap). */
  readonly owner: number;
  readonly base: number;
  /** Ring entries, pages, or bitmap words. */
  readonly size: number;
  readonly count: number;
}

export class WmmLocations {
  /** Per buffer, per byte offset of an area in it: the area's first location. */
  readonly bases = new Map<ArrayBufferLike, Map<number, number>>();
  readonly regions: WmmRegion[] = [];
  readonly syncObjects = new Map<ArrayBufferLike, Map<number, number>>();
  locations = 0;
  syncCount = 0;

  constructor(vm: VmCore) {
    for (let v = 0; v < vm.vcpuCount; v++) {
      const ring = vm.ring(v);
      if (ring === null) continue;
      this.add(ring.i32.buffer, ring.i32.byteOffset, 'ring', v, ring.size, ringLocationCount(ring.size));
    }
    for (const slot of vm.memslots.active()) {
      this.add(slot.spte.buffer, slot.spte.byteOffset, 'spte', slot.id, slot.pageCount, slot.pageCount);
      const words = bitmapBytes(slot.pageCount) / WORD_BYTES;
      if (slot.bitmap !== null) this.add(slot.bitmap.buffer, slot.bitmap.byteOffset, 'bitmap', slot.id, words, words);
    }
    this.addSyncWord(vm.block.i32, VmLayout.words.MMU_LOCK);
    this.addSyncWord(vm.block.i32, VmLayout.words.SLOTS_LOCK);
  }

  /** A region beyond the VM's (a user harvester's shared words): after the VM's, in every thread alike. */
  addRegion(buffer: ArrayBufferLike, kind: WmmRegion['kind'], owner: number, size: number, count: number): void {
    this.add(buffer, 0, kind, owner, size, count);
  }

  private add(buffer: ArrayBufferLike, byteOffset: number, kind: WmmRegion['kind'], owner: number, size: number, count: number): void {
    let byOffset = this.bases.get(buffer);
    if (!byOffset) {
      byOffset = new Map();
      this.bases.set(buffer, byOffset);
    }
    byOffset.set(byteOffset, this.locations);
    this.regions.push({ kind, owner, base: this.locations, size, count });
    this.locations += count;
  }

  /** The region holding location `loc`, or undefined. */
  regionOf(loc: number): WmmRegion | undefined {
    return this.regions.find((r) => loc >= r.base && loc < r.base + r.count);
  }

  /** Make `i32[word]` a sync object (a lock, or a control word the caller acquires and releases); returns its id. */
  addSyncWord(i32: Int32Array, word: number): number {
    let byWord = this.syncObjects.get(i32.buffer);
    if (!byWord) {
      byWord = new Map();
      this.syncObjects.set(i32.buffer, byWord);
    }
    const index = word + i32.byteOffset / WORD_BYTES;
    const known = byWord.get(index);
    if (known !== undefined) return known;
    byWord.set(index, this.syncCount);
    return this.syncCount++;
  }
}
