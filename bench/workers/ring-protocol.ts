/** What the ring-path suite and its producer workers share (no side effects: importable anywhere). */
import type { VmBuffers } from '../../src/kernel/vm.js';

export type RingMode = 'dirtyring' | 'ringbuf' | 'flags';

export interface ProducerData {
  readonly mode: RingMode;
  readonly index: number;
  /** Control words: see Ctl. */
  readonly control: SharedArrayBuffer;
  readonly vm?: VmBuffers;
  readonly ring?: SharedArrayBuffer;
  /** The encoded memslot and the page range this producer's offsets cycle through. */
  readonly slot: number;
  readonly firstPage: number;
  readonly pageSpan: number;
}

/** Control block words (Int32). */
export const Ctl = {
  /** Round number; the main thread bumps it to start a round, -1 ends the worker. */
  ROUND: 0,
  /** Records each producer pushes this round. */
  COUNT: 1,
  /** Producers finished with this round. */
  DONE: 2,
  /** Set to 1 by a producer that failed (its message is posted). */
  FAILED: 3,
  WORDS: 4,
} as const;

