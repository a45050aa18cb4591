/**
 * How the planted bugs (planted-bugs.ts) get into the code: a method of a kernel or userspace
 * class replaced on its prototype, in the thread that loads this module, and put back by the
 * returned undo. Test code only: the shipped code has no switch for any of these bugs.
 */
import { highestBit, type ResetBatch } from '../../src/kernel/reset-batch.js';

export type Undo = () => void;

// Planted bugs reach into private methods and fields: the signatures are the bug's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Method = (this: any, ...args: any[]) => any;

/** Replace `proto[name]` with what `make` builds from the original; returns the undo. */
export function patchMethod(proto: object, name: string, make: (original: Method) => Method): Undo {
  const target = proto as Record<string, Method>;
  const original = target[name];
  if (typeof original !== 'function') throw new Error(`planted bug: no method ${name} to patch`);
  target[name] = make(original);
  return () => {
    target[name] = original;
  };
}

export function undoAll(undos: readonly Undo[]): Undo {
  return () => {
    for (const u of [...undos].reverse()) u();
  };
}

/** How the next entry of a reset walk would join the open batch (as ResetBatch.add decides). */
export type Join = 'first' | 'duplicate' | 'forward' | 'backward' | 'break-slot' | 'break-far';

const BATCH_PAGES = 64;

export function joinOf(b: ResetBatch, slot: number, offLo: number, offHi: number): Join {
  if (!b.open) return 'first';
  if (slot !== b.slot) return 'break-slot';
  if (offHi !== 0 || b.offHi !== 0) return 'break-far';
  const d = offLo - b.offLo;
  if (d === 0) return 'duplicate';
  if (d > 0 && d < BATCH_PAGES) return 'forward';
  if (d < 0 && d > -BATCH_PAGES && highestBit(b.maskLo, b.maskHi) - d < BATCH_PAGES) return 'backward';
  return 'break-far';
}

/**
 * A stand-in for the reset walk's batch: `add` asks `before(batch, entry)` first, which may
 * drop the entry (false: its page is never re-protected) or change the batch.
 */
export function batchProxy(batch: ResetBatch, before: (b: ResetBatch, slot: number, offLo: number, offHi: number) => boolean): ResetBatch {
  return {
    get open() {
      return batch.open;
    },
    set open(v: boolean) {
      batch.open = v;
    },
    add(slot: number, offLo: number, offHi: number, sink: Parameters<ResetBatch['add']>[3]): void {
      if (before(batch, slot, offLo, offHi)) batch.add(slot, offLo, offHi, sink);
    },
    finish(sink: Parameters<ResetBatch['finish']>[0]): void {
      batch.finish(sink);
    },
  } as ResetBatch;
}
