/**
 * Ring entries harvested in one collection — (encoded slot, offset low, offset high) — held
 * until KVM_RESET_DIRTY_RINGS returns, because a page is only safe to read once the reset has
 * re-protected it (docs/PROTOCOL.md, "4. The reset walk and its coalescing"). Sized for one
 * ring's worth per vCPU, which a correct kernel never exceeds between two resets; a broken one
 * (a lapping ring) can, and then the buffer grows rather than dropping entries the oracle must
 * see.
 */
import type { ReadyPageSink } from './ready-page-sink.js';

const WORDS_PER_ENTRY = 3;

export class PendingEntries {
  private words: Uint32Array;
  private entryCount = 0;

  constructor(capacityEntries: number) {
    this.words = new Uint32Array(Math.max(1, capacityEntries) * WORDS_PER_ENTRY);
  }

  get count(): number {
    return this.entryCount;
  }

  /** A sink of harvested entries (bound once: the harvest loop stays allocation-free). */
  readonly push = (slot: number, offLo: number, offHi: number): void => {
    const i = this.entryCount++ * WORDS_PER_ENTRY;
    if (i + WORDS_PER_ENTRY > this.words.length) {
      const bigger = new Uint32Array(this.words.length * 2);
      bigger.set(this.words);
      this.words = bigger;
    }
    this.words[i] = slot;
    this.words[i + 1] = offLo;
    this.words[i + 2] = offHi;
  };

  clear(): void {
    this.entryCount = 0;
  }

  /** Hands every held entry to `sink`, in harvest order. */
  emit(sink: ReadyPageSink): void {
    const w = this.words;
    for (let i = 0; i < this.entryCount; i++) {
      const j = i * WORDS_PER_ENTRY;
      sink(w[j]!, w[j + 1]!, w[j + 2]!);
    }
  }
}
