/**
 * A device that writes guest memory without a running vCPU — what KVM does for in-kernel
 * devices (kvm_write_guest outside vCPU context: arm64's vGIC/ITS table saves, PV clocks).
 * The data is stored first, then the page is marked dirty with no vCPU: that goes to the slot's
 * bitmap when there is one, and is lost with a WARN in a ring VM without ring-with-bitmap.
 */
import { PAGE_WORDS } from '../abi/constants.js';
import { DEVICE_WRITER_BASE, GUEST_PAGE_HEADER_WORDS, writePageHeader } from '../guest/guest-memory.js';
import { u32Arg, u64NumberArg } from './ioctl-args.js';
import type { Memslot } from './memslots.js';
import { NoVcpuMark } from './dirty-log-ioctl.js';
import type { Vm } from './vm.js';

const DATA_WORDS = PAGE_WORDS - GUEST_PAGE_HEADER_WORDS;
/**
 * The data word mixes the sequence number with the value (a murmur3 multiplier, a different one
 * from the vCPUs' so that a device's page never reads as a vCPU's).
 */
const DEVICE_DATA_WORD_HASH = 0x85ebca6b;

export class DmaDevice {
  private lastSlot: Memslot | null = null;
  private seq = 0;
  writes = 0;
  /** Writes recorded in a dirty bitmap. */
  logged = 0;
  /** Writes that needed a record and got none (a ring VM without ring-with-bitmap). */
  lost = 0;

  constructor(
    readonly vm: Vm,
    readonly deviceId: number,
  ) {}

  /** kvm_write_guest of one page header (plus a data word); false if the gfn is in no slot. */
  write(gfn: number, value: number): boolean {
    // kvm_write_guest gives EFAULT for a gpa it cannot write; a gfn that is not even an integer
    // is refused the same way (thrown, not `false`, so that it cannot pass for a hole in the map).
    u64NumberArg(gfn, 'gfn', 'EFAULT');
    u32Arg(value, 'value');
    let slot = this.lastSlot;
    // `current`, not `active`: after a move, or a delete and a create at the same table index,
    // the cached view is still of an ACTIVE entry but maps the old base and the old buffers.
    if (slot === null || !slot.current || gfn < slot.baseGfn || gfn - slot.baseGfn >= slot.pageCount) {
      slot = this.vm.memslots.findByGfn(0, gfn);
      this.lastSlot = slot;
      if (slot === null) return false;
    }
    const page = gfn - slot.baseGfn;
    const m = slot.mem32;
    const base = page * PAGE_WORDS;
    const seq = (this.seq = (this.seq + 1) >>> 0);
    writePageHeader(m, base, value, DEVICE_WRITER_BASE + this.deviceId, seq);
    m[base + GUEST_PAGE_HEADER_WORDS + (seq % DATA_WORDS)] = (seq ^ Math.imul(value, DEVICE_DATA_WORD_HASH)) >>> 0;
    this.writes++;
    // Data before the record, as __kvm_write_guest_page does.
    const mark = this.vm.markPageDirtyNoVcpu(slot, page);
    if (mark === NoVcpuMark.LOGGED) this.logged++;
    else if (mark === NoVcpuMark.LOST) this.lost++;
    return true;
  }
}
