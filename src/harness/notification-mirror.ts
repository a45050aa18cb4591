/**
 * Userspace's mirror of the page-track notifications of a run: for each candidate page and each
 * vCPU, the page header that vCPU last wrote, as the notification carried it. With every writer
 * parked, a page whose header changed since the last check must show exactly the header that its
 * writer's last notification carried: the guest's last store to the page reached userspace.
 */
import { PAGE_SIZE, PAGE_WORDS } from '../abi/constants.js';
import { GUEST_PAGE_HEADER_WORDS, GuestPageWords } from '../guest/guest-memory.js';
import type { Memslot } from '../kernel/memslots.js';
import { TrackRingEntryKind } from '../pagetrack/notification-ring-layout.js';
import type { TrackNotification } from '../pagetrack/notification-ring.js';

/** Bytes of a page header: the one store of a guest write the mirror follows. */
const HEADER_BYTES = GUEST_PAGE_HEADER_WORDS * Uint32Array.BYTES_PER_ELEMENT;

export class NotificationMirror {
  private readonly candidateIndex = new Map<number, number>();
  /** Per candidate: the page header at the last parked check (or when watching began). */
  private readonly baseline: Uint32Array;
  /** Per candidate and vCPU: the header of the last write notification received. */
  private readonly lastHeader: Uint32Array;
  private readonly hasHeader: Uint8Array;
  /** Per candidate: the iteration in which watching began (its mirror is judged after). */
  private readonly watchedFrom: Int32Array;

  constructor(
    private readonly gfns: readonly number[],
    private readonly slots: readonly Memslot[],
    private readonly vcpus: number,
  ) {
    const n = gfns.length;
    gfns.forEach((gfn, i) => this.candidateIndex.set(gfn, i));
    this.baseline = new Uint32Array(n * GUEST_PAGE_HEADER_WORDS);
    this.lastHeader = new Uint32Array(n * vcpus * GUEST_PAGE_HEADER_WORDS);
    this.hasHeader = new Uint8Array(n * vcpus);
    this.watchedFrom = new Int32Array(n);
  }

  /** Candidate `i` is (again) shadowed from iteration `k`: forget what was mirrored before. */
  watch(i: number, k: number): void {
    this.watchedFrom[i] = k;
    this.hasHeader.fill(0, i * this.vcpus, (i + 1) * this.vcpus);
    this.snapshot(i);
  }

  /** Whether candidate `i` was watched before iteration `k` began (only then is it judged). */
  watchedBefore(i: number, k: number): boolean {
    return this.watchedFrom[i]! < k;
  }

  /** Take one notification: a header store of a candidate page is remembered per vCPU. */
  record(n: TrackNotification): void {
    if (n.kind !== TrackRingEntryKind.WRITE || n.addr % PAGE_SIZE !== 0 || n.length !== HEADER_BYTES) return;
    const i = this.candidateIndex.get(n.addr / PAGE_SIZE);
    if (i === undefined || n.vcpu < 0 || n.vcpu >= this.vcpus) return;
    const at = (i * this.vcpus + n.vcpu) * GUEST_PAGE_HEADER_WORDS;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) this.lastHeader[at + w] = n.data[w]!;
    this.hasHeader[i * this.vcpus + n.vcpu] = 1;
  }

  /** With every writer parked: an unchanged page, or its writer's last notified header. */
  agrees(i: number): boolean {
    const page = this.pageWords(i);
    if (page === null) return true;
    const { mem, base } = page;
    let changed = false;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) if (mem[base + w] !== this.baseline[i * GUEST_PAGE_HEADER_WORDS + w]) changed = true;
    if (!changed) return true;
    const writer = mem[base + GuestPageWords.WRITER_VCPU]!;
    if (writer >= this.vcpus || this.hasHeader[i * this.vcpus + writer] !== 1) return false;
    const at = (i * this.vcpus + writer) * GUEST_PAGE_HEADER_WORDS;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) if (mem[base + w] !== this.lastHeader[at + w]) return false;
    return true;
  }

  /** The page's header now becomes the baseline (exact only while every writer is parked). */
  snapshot(i: number): void {
    const page = this.pageWords(i);
    if (page === null) return;
    for (let w = 0; w < GUEST_PAGE_HEADER_WORDS; w++) this.baseline[i * GUEST_PAGE_HEADER_WORDS + w] = page.mem[page.base + w]!;
  }

  private pageWords(i: number): { mem: Uint32Array; base: number } | null {
    const gfn = this.gfns[i]!;
    const slot = this.slots.find((s) => gfn >= s.baseGfn && gfn - s.baseGfn < s.pageCount);
    return slot ? { mem: slot.mem32, base: (gfn - slot.baseGfn) * PAGE_WORDS } : null;
  }
}
