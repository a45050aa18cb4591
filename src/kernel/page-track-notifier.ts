/**
 * Page-track notifiers as registered: what a write-tracking user registers, and how each thread
 * gets its own instance of it (the callbacks themselves are page-track-node.ts).
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
import type { PageTrackNotifier } from './page-track-node.js';
import type { Vm } from './vm.js';

export type { PageTrackNotifier, TrackWriteInfo } from './page-track-node.js';

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
