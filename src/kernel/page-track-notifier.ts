/**
 * Page-track notifiers (struct kvm_page_track_notifier_node): what a write-tracking user
 * registers, and how each thread gets its own instance of it.
 *
 * In the kernel a notifier is one object called from whichever thread makes the event: the
 * vCPU thread that emulated a write, the ioctl thread that deletes a memslot. Here those are
 * different JavaScript realms (workers), which share memory but not functions. So a notifier
 * is registered as a *spec* — a kind name plus one SharedArrayBuffer holding all of its state —
 * and every thread builds its own instance from the spec with the factory registered for that
 * kind. The instances share their state through the buffer, so together they behave as the
 * kernel's single notifier. Factories are plain modules imported by the worker entry, which is
 * what lets the same code run in Node workers and in browser Web Workers.
 */
import { KvmError } from '../abi/errno.js';
import type { Vm } from './vm.js';

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

/** A notifier as registered: posted to every thread, which builds its instance from it. */
export interface TrackNotifierSpec {
  /** A kind registered with defineTrackNotifierKind in every thread (src/pagetrack/kinds.ts). */
  readonly kind: string;
  /** The notifier's shared state. */
  readonly buffer: SharedArrayBuffer;
}

/** Builds this thread's instance of a notifier. `vm` is this thread's view of the VM. */
export type TrackNotifierFactory = (spec: TrackNotifierSpec, vm: Vm) => PageTrackNotifier;

const kinds = new Map<string, TrackNotifierFactory>();

/** Make a notifier kind available in this thread (call at module load, in every thread). */
export function defineTrackNotifierKind(kind: string, factory: TrackNotifierFactory): void {
  kinds.set(kind, factory);
}

/** This thread's instance of `spec`; EINVAL for a kind this thread does not know. */
export function instantiateTrackNotifier(spec: TrackNotifierSpec, vm: Vm): PageTrackNotifier {
  const factory = kinds.get(spec.kind);
  if (!factory) {
    throw new KvmError('EINVAL', `unknown page-track notifier kind '${spec.kind}' (known: ${[...kinds.keys()].join(', ') || 'none'})`, 'kind');
  }
  return factory(spec, vm);
}
