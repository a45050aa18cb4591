/**
 * A migration thread's manual-protect loop (correct): per memslot, KVM_GET_DIRTY_LOG into its
 * own bitmap, then per 256-page chunk KVM_CLEAR_DIRTY_LOG of exactly the bits just read, and
 * only then report that chunk's pages — clearing (and so re-protecting) before reading.
 *
 * Expected: 0 forbidden outcomes in free and controlled campaigns.
 */
import { defineHarvester } from 'dirtyring';

/** Pages per CLEAR: KVM wants first_page and num_pages multiples of 64 (num_pages may end the slot). */
const CHUNK_PAGES = 256;
const BITS_PER_WORD = 32;
const PAGES_PER_U64 = 64;

export default defineHarvester({
  name: 'get-chunked-clear',
  log: 'clear',
  create(kvm) {
    const slots = kvm.memslots.map((s) => {
      // KVM's bitmap layout: one bit per page, in u64 words (here as pairs of u32).
      const words = new Uint32Array(Math.ceil(s.pageCount / PAGES_PER_U64) * 2);
      const chunks: { first: number; num: number; mask: Uint32Array }[] = [];
      for (let first = 0; first < s.pageCount; first += CHUNK_PAGES) {
        const num = Math.min(CHUNK_PAGES, s.pageCount - first);
        const w = first / BITS_PER_WORD;
        chunks.push({ first, num, mask: words.subarray(w, w + Math.ceil(num / PAGES_PER_U64) * 2) });
      }
      return { slot: s.slot, words, chunks };
    });
    return {
      collect() {
        for (const s of slots) {
          kvm.getDirtyLog(s.slot, s.words);
          for (const c of s.chunks) {
            let any = 0;
            for (let i = 0; i < c.mask.length; i++) any |= c.mask[i]!;
            if (any === 0) continue;
            kvm.clearDirtyLog(s.slot, c.first, c.num, c.mask);
            for (let i = 0; i < c.mask.length; i++) {
              let bits = c.mask[i]! >>> 0;
              while (bits !== 0) {
                const b = 31 - Math.clz32(bits);
                bits = (bits & ~(1 << b)) >>> 0;
                kvm.report(s.slot, c.first + i * BITS_PER_WORD + b);
              }
            }
          }
        }
      },
    };
  },
});
