/**
 * struct kvm_page_track_notifier_node: what a page write-tracking user is to the kernel, the two
 * callbacks it receives. How a node is registered and instantiated in every thread is
 * page-track-notifier.ts; the list that calls the nodes is track-notifier-list.ts.
 */

/** What a notifier learns about one emulated write, besides (gpa, bytes, length). */
export interface TrackWriteInfo {
  /** The vCPU whose emulated write this was (the callback runs in its thread). */
  vcpuIndex: number;
  /**
   * Whether the gfn was write-tracked (count > 0) when the write completed. KVM calls every
   * notifier for every emulated write and leaves each to filter (page_track.c: "the node should
   * figure out if the written page is the one that node is interested in by itself"); the
   * emulator passes the tracking state it already read, so that a notifier interested in
   * tracked pages only sees exactly the writes the kernel counts as tracked.
   */
  tracked: boolean;
}

export interface PageTrackNotifier {
  /**
   * track_write: called after an emulated write of `length` bytes at `gpa`, in the writing
   * vCPU's thread, inside the notifier list's SRCU read section. `bytes` (the new data) is a
   * scratch view, valid only during the call. Must not block for long: unregister waits for it.
   */
  trackWrite(gpa: number, bytes: Uint8Array, length: number, info: TrackWriteInfo): void;
  /** track_remove_region: a memslot is going away (delete or move), in the ioctl's thread. */
  trackRemoveRegion(baseGfn: number, pageCount: number): void;
}
