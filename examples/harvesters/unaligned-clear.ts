/**
 * BUGGY: a manual-protect loop that CLEARs each chunk from its first dirty page instead of the
 * chunk's 64-aligned start. KVM refuses an unaligned first_page with EINVAL; this harvester
 * takes the refusal as "try again next time" and reports nothing for the chunk. It never
 * succeeds, so a dirty page whose chunk starts unaligned is never reported — not even by the
 * final collection.
 *
 * Expected: caught as `lost-page` in the first free run and in the first controlled runs, with
 * `harvester-errno` (the EINVALs) alongside; the kernel side returns EINVAL and nothing else.
 */
import { KvmError, defineHarvester } from 'dirtyring';

const CHUNK_PAGES = 256;
const PAGES_PER_U64 = 64;

function isSet(words: Uint32Array, page: number): boolean {
  return ((words[page >>> 5]! >>> (page & 31)) & 1) !== 0;
}

export default defineHarvester({
  name: 'unaligned-clear',
  log: 'clear',
  create(kvm) {
    const bitmaps = kvm.memslots.map((s) => new Uint32Array(Math.ceil(s.pageCount / PAGES_PER_U64) * 2));
    const scratch = new Uint32Array(Math.ceil((CHUNK_PAGES + PAGES_PER_U64) / PAGES_PER_U64) * 2);
    return {
      collect() {
        kvm.memslots.forEach((s, k) => {
          const words = bitmaps[k]!;
          kvm.getDirtyLog(s.slot, words);
          for (let chunk = 0; chunk < s.pageCount; chunk += CHUNK_PAGES) {
            const end = Math.min(chunk + CHUNK_PAGES, s.pageCount);
            let first = chunk;
            while (first < end && !isSet(words, first)) first++;
            if (first === end) continue;
            // The mask from `first` on (bit 0 = page `first`).
            const num = end - first;
            scratch.fill(0);
            for (let p = first; p < end; p++) if (isSet(words, p)) scratch[(p - first) >>> 5]! |= 1 << ((p - first) & 31);
            try {
              kvm.clearDirtyLog(s.slot, first, num, scratch.subarray(0, Math.ceil(num / PAGES_PER_U64) * 2));
            } catch (e) {
              if (e instanceof KvmError && e.errno === 'EINVAL') continue; // "retry next collection"
              throw e;
            }
            for (let p = first; p < end; p++) if (isSet(words, p)) kvm.report(s.slot, p);
          }
        });
      },
    };
  },
});
