/**
 * What a trace debugger shows at each step of a controlled run: every ring's indices and entry
 * flags (with the page each entry names), and for every page of the checked memslot its SPTE's
 * writable bit, its dirty bit (bitmap modes) and the iteration stamped in it. Taken from the
 * run's shared memory while every participant is parked (ControlledRunInput.onStep), so each
 * snapshot is the state between two moves. Scenarios are small (a few pages, short rings), so
 * a full copy per step is cheap.
 */
import { DirtyGfnWords, DIRTY_GFN_WORDS } from '../../abi/dirty-gfn.js';
import { PAGE_SIZE } from '../../abi/constants.js';
import { GuestPageWords } from '../../guest/guest-memory.js';
import { SpteBits } from '../../kernel/memslot-layout.js';
import type { Memslot } from '../../kernel/memslots.js';
import { VcpuLayout } from '../../kernel/vcpu-layout.js';
import type { Vm } from '../../kernel/vm.js';

const WORDS_PER_PAGE = PAGE_SIZE / Uint32Array.BYTES_PER_ELEMENT;
const BITS_PER_WORD = 32;

export interface RingSnapshot {
  readonly dirtyIndex: number;
  readonly resetIndex: number;
  /** Flags of each entry (KVM_DIRTY_GFN_F_*). */
  readonly flags: number[];
  /** The page offset each entry names. */
  readonly offsets: number[];
}

export interface StepSnapshot {
  /** Moves made before this snapshot. */
  readonly steps: number;
  readonly rings: RingSnapshot[];
  /** Per page of the checked memslot: SPTE writable (1) or not (0). */
  readonly writable: number[];
  /** Per page: the live dirty bit (bitmap modes), else 0. */
  readonly dirtyBit: number[];
  /** Per page: the iteration stamped in its header (0: never written). */
  readonly stamp: number[];
}

export function takeSnapshot(steps: number, vm: Vm, vcpus: number, slot: Memslot): StepSnapshot {
  const rings: RingSnapshot[] = [];
  for (let i = 0; i < vcpus; i++) {
    const words = vm.ringWords(i);
    if (words === null) continue;
    const entries = words.length / DIRTY_GFN_WORDS;
    const flags: number[] = [];
    const offsets: number[] = [];
    for (let e = 0; e < entries; e++) {
      flags.push(Atomics.load(words, e * DIRTY_GFN_WORDS + DirtyGfnWords.FLAGS));
      offsets.push(words[e * DIRTY_GFN_WORDS + DirtyGfnWords.OFFSET_LO]! >>> 0);
    }
    const ctl = vm.vcpuBlock(i).i32;
    rings.push({
      dirtyIndex: Atomics.load(ctl, VcpuLayout.words.DIRTY_INDEX) >>> 0,
      resetIndex: Atomics.load(ctl, VcpuLayout.words.RESET_INDEX) >>> 0,
      flags,
      offsets,
    });
  }
  const writable: number[] = [];
  const dirtyBit: number[] = [];
  const stamp: number[] = [];
  const bitmap = slot.bitmap;
  for (let p = 0; p < slot.pageCount; p++) {
    writable.push((Atomics.load(slot.spte, p) & SpteBits.WRITABLE) !== 0 ? 1 : 0);
    dirtyBit.push(bitmap !== null && ((Atomics.load(bitmap, Math.floor(p / BITS_PER_WORD)) >>> p % BITS_PER_WORD) & 1) !== 0 ? 1 : 0);
    stamp.push(slot.mem32[p * WORDS_PER_PAGE + GuestPageWords.ITERATION_LO]!);
  }
  return { steps, rings, writable, dirtyBit, stamp };
}
