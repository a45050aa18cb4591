/**
 * The vCPU side of page write-tracking: how the emulator writes a write-tracked page, and how
 * every emulated write reaches the page-track notifiers. Runs in the vCPU's thread, on the
 * write path, so it allocates nothing.
 *
 * A write fault on a tracked page is never fixed (kvm_mmu_page_fault returns RET_PF_EMULATE):
 * the instruction is emulated, its store goes through emulator_write_phys, i.e.
 *   1. kvm_vcpu_write_guest: the store itself, then mark_page_dirty_in_slot — on every such
 *      store, so N stores to a tracked page make N dirty records, where the hardware path makes
 *      one per fault (docs/PROTOCOL.md, section 7, "Emulated path"; observed, section 8);
 *   2. kvm_page_track_write: every notifier receives (gpa, bytes, length).
 * In that order: a notifier that reads guest memory (the shadow MMU re-reads the guest PTE)
 * must find the new bytes, or it would keep a stale copy with nothing left to correct it.
 *
 * What a tracked store writes: the page header the workloads write (iteration, writer vCPU,
 * writer sequence; GuestPageWords) as one 16-byte write — a single kvm_vcpu_write_guest, hence
 * exactly one dirty record and one notification per store. The ordinary store also writes one
 * data word elsewhere in the page; a tracked store leaves it out so that it stays one write.
 *
 * Ordinary emulated stores (multi-page bursts, `--path emulated`) go to the notifiers too, as
 * the header and the data word (two writes), with `tracked` read from the SPTE after the
 * stores: a page whose tracking began while the emulator was writing it is reported, so a
 * tracker that adds tracking and then copies the page either copies the new bytes or is told.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, writePageHeader } from '../guest/guest-memory.js';
import { Edge, coverage, hit } from './coverage.js';
import { SpteBits } from './memslot-layout.js';
import type { Memslot } from './memslots.js';
import { KernelMutant } from './mutants.js';
import { gpaOf } from './page-track.js';
import type { TrackNotifierList } from './track-notifier-list.js';
import type { Vm } from './vm.js';

const TRACKED = SpteBits.WRITE_TRACKED;
/** Bytes of the header write a tracked store makes. */
export const TRACKED_STORE_BYTES = GUEST_PAGE_HEADER_WORDS * Uint32Array.BYTES_PER_ELEMENT;

export type MarkPageDirty = (slot: Memslot, page: number) => void;

export class TrackedWriteEmulator {
  private readonly notifiers: TrackNotifierList;
  /** The bytes of the write being notified (a scratch buffer, valid during the callbacks). */
  private readonly words = new Uint32Array(GUEST_PAGE_HEADER_WORDS);
  private readonly bytes = new Uint8Array(this.words.buffer);
  private readonly notifyBeforeWrite: boolean;

  constructor(
    vm: Vm,
    private readonly vcpuIndex: number,
    /** The vCPU's mark_page_dirty_in_slot (its ring, or the slot's bitmap). */
    private readonly markDirty: MarkPageDirty,
  ) {
    this.notifiers = vm.pageTrack.notifiers;
    this.notifyBeforeWrite = vm.hasMutant(KernelMutant.TRACK_NOTIFY_BEFORE_WRITE);
  }

  /** Whether a store to `page` must be emulated as a tracked write (its count is non-zero). */
  isTracked(slot: Memslot, page: number): boolean {
    return (Atomics.load(slot.spte, page) & TRACKED) !== 0;
  }

  /** Emulate one guest store to a write-tracked page: write, mark dirty, notify. */
  store(slot: Memslot, page: number, value: number, seq: number): void {
    writePageHeader(this.words, 0, value, this.vcpuIndex, seq);
    // The mutant notifies first: a notifier re-reading the page then finds the old bytes.
    const before = this.notifyBeforeWrite;
    if (before) this.notify(slot, page);
    this.write(slot, page);
    this.markDirty(slot, page);
    if (!before) this.notify(slot, page);
    if (coverage.active) hit(Edge.TRACK_STORE);
  }

  private notify(slot: Memslot, page: number): void {
    this.notifiers.notifyWrite(this.vcpuIndex, gpaOf(slot, page), this.bytes, TRACKED_STORE_BYTES, true);
  }

  /**
   * After an ordinary emulated store (header + data word at `dataWord`, already written and
   * marked dirty) to a page that was not tracked when the emulator looked.
   */
  afterStore(slot: Memslot, page: number, value: number, seq: number, dataWord: number): void {
    const tracked = (Atomics.load(slot.spte, page) & TRACKED) !== 0;
    if (!tracked && this.notifiers.activeNotifiers === 0) return; // nothing to count, nobody to tell
    const w = this.words;
    writePageHeader(w, 0, value, this.vcpuIndex, seq);
    const gpa = gpaOf(slot, page);
    this.notifiers.notifyWrite(this.vcpuIndex, gpa, this.bytes, TRACKED_STORE_BYTES, tracked);
    w[0] = slot.mem32[page * PAGE_WORDS + dataWord]!;
    const wordBytes = Uint32Array.BYTES_PER_ELEMENT;
    this.notifiers.notifyWrite(this.vcpuIndex, gpa + dataWord * wordBytes, this.bytes, wordBytes, tracked);
  }

  private write(slot: Memslot, page: number): void {
    const m = slot.mem32;
    const base = page * PAGE_WORDS;
    const w = this.words;
    for (let i = 0; i < GUEST_PAGE_HEADER_WORDS; i++) m[base + i] = w[i]!;
  }
}
