/**
 * Where a collector hands each dirty page once it is safe to read (the kernel has re-armed
 * logging for it: after the reset, the legacy GET, or the page's CLEAR). A sink is called in
 * the harvest loop, so it is a plain function of numbers: nothing to allocate per page.
 */

/** Receives a page that is safe to read: encoded slot and u64 offset as halves. */
export type ReadyPageSink = (slot: number, offLo: number, offHi: number) => void;
