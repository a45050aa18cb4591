/** Shared helpers of the page-track tests: a notifier that records, and a harvest of vCPU 0's ring. */
import { PAGE_SIZE, PAGE_WORDS } from '../../../src/abi/constants.js';
import { harvestRing } from '../../../src/kernel/dirty-ring.js';
import type { PageTrackNotifier, TrackWriteInfo } from '../../../src/kernel/page-track-notifier.js';
import { SLOT_GFN, type ringVm } from '../../helpers/vm-fixtures.js';

export interface Write {
  gpa: number;
  length: number;
  words: number[];
  vcpu: number;
  tracked: boolean;
  /** The page header as the notifier found it in guest memory during the callback. */
  memoryAtCall: number[];
}

/** A notifier that records everything, reading guest memory during each callback. */
export class Recorder implements PageTrackNotifier {
  readonly writes: Write[] = [];
  readonly removed: [number, number][] = [];
  constructor(private readonly mem32?: Uint32Array) {}
  trackWrite(gpa: number, bytes: Uint8Array, length: number, info: TrackWriteInfo): void {
    const words = Array.from(new Uint32Array(bytes.slice(0, length).buffer, 0, Math.floor(length / 4)));
    const page = Math.floor(gpa / PAGE_SIZE) - SLOT_GFN;
    const memoryAtCall = this.mem32 ? Array.from(this.mem32.subarray(page * PAGE_WORDS, page * PAGE_WORDS + 4)) : [];
    this.writes.push({ gpa, length, words, vcpu: info.vcpuIndex, tracked: info.tracked, memoryAtCall });
  }
  trackRemoveRegion(baseGfn: number, pageCount: number): void {
    this.removed.push([baseGfn, pageCount]);
  }
}

export function harvest(fx: ReturnType<typeof ringVm>, cursor = { fetchIndex: 0 }): number[] {
  const offsets: number[] = [];
  harvestRing(fx.vm.mmapRing(0), cursor, 1 << 20, (_s, lo) => offsets.push(lo));
  return offsets;
}

export const gfn = (offset: number): number => SLOT_GFN + offset;
