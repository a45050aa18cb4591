/**
 * A device that writes guest memory without a running vCPU — what KVM does for in-kernel
 * devices (kvm_write_guest outside vCPU context: arm64's vGIC/ITS table saves, PV clocks).
 * The data is stored first, then the page is marked dirty with no vCPU: that goes to the slot's
 * bitmap when there is one, and is lost with a WARN in a ring VM without ring-with-bitmap.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { DEVICE_WRITER_BASE, GUEST_PAGE_HEADER_WORDS, GuestPageWords } from '../abi/layout.js';
import type { Memslot } from './memslots.js';
import type { Vm } from './vm.js';

const DATA_WORDS = PAGE_WORDS - GUEST_PAGE_HEADER_WORDS;

export class DmaDevice {
  private lastSlot: Memslot | null = null;
  private seq = 0;
  writes = 0;
  logged = 0;
  lost = 0;

  constructor(
    readonly vm: Vm,
    readonly deviceId: number,
  ) {}

  /** kvm_write_guest of one page header (plus a data word); false if the gfn is in no slot. */
  write(gfn: number, value: number): boolean {
    let slot = this.lastSlot;
    if (slot === null || !slot.active || gfn < slot.baseGfn || gfn - slot.baseGfn >= slot.pageCount) {
      slot = this.vm.memslots.findByGfn(0, gfn);
      this.lastSlot = slot;
      if (slot === null) return false;
    }
    const page = gfn - slot.baseGfn;
    const m = slot.mem32;
    const base = page * PAGE_WORDS;
    const seq = (this.seq = (this.seq + 1) >>> 0);
    m[base + GuestPageWords.ITERATION_LO] = value;
    m[base + GuestPageWords.ITERATION_HI] = 0;
    m[base + GuestPageWords.WRITER_VCPU] = DEVICE_WRITER_BASE + this.deviceId;
    m[base + GuestPageWords.WRITER_SEQ] = seq;
    m[base + GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS)] = (seq ^ Math.imul(value, 0x85ebca6b)) >>> 0;
    this.writes++;
    // Data before the record, as __kvm_write_guest_page does.
    if (this.vm.markPageDirtyNoVcpu(slot, page)) this.logged++;
    else this.lost++;
    return true;
  }
}
