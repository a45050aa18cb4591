/**
 * A harvester thread's copy (ThreadPageCopier): made at the moment of the report, into the
 * harness copier's destinations, once per round whichever thread reports first; the harness
 * then counts each outcome as its own copy would have.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_WORDS } from '../../../src/abi/constants.js';
import { DirtyPageCopier, ThreadCopy } from '../../../src/userspace/dirty-copier.js';
import { ThreadPageCopier } from '../../../src/userspace/thread-page-copier.js';
import { ringVm } from '../../helpers/vm-fixtures.js';

function fixture(): { copier: DirtyPageCopier; thread: ThreadPageCopier; other: ThreadPageCopier; mem: Int32Array | Uint32Array; slot: number } {
  const { slot } = ringVm({ pages: 64 });
  const copier = new DirtyPageCopier([slot]);
  const shared = copier.shared();
  return { copier, thread: new ThreadPageCopier([slot], shared), other: new ThreadPageCopier([slot], shared), mem: slot.mem32, slot: slot.encodedSlot };
}

describe('ThreadPageCopier', () => {
  it('copies the page as it is when reported: a later write is not in the copy', () => {
    const { copier, thread, mem, slot } = fixture();
    copier.beginRound();
    mem[5 * PAGE_WORDS + 100] = 7;
    expect(thread.copy(slot, 5, 0)).toBe(ThreadCopy.COPIED);
    mem[5 * PAGE_WORDS + 100] = 8; // after the report: the copy keeps 7
    copier.account(slot, 5, ThreadCopy.COPIED);
    expect(copier.destinations[0]![5 * PAGE_WORDS + 100]).toBe(7);
    expect(copier.pagesCopied).toBe(1);
    expect(copier.compare().indices).toEqual([5]);
  });

  it('once per round, whichever thread reports first; bad records named as such; counted as the harness counts', () => {
    const { copier, thread, other, slot } = fixture();
    copier.beginRound();
    expect(thread.copy(slot, 3, 0)).toBe(ThreadCopy.COPIED);
    expect(other.copy(slot, 3, 0)).toBe(ThreadCopy.DUPLICATE);
    expect(thread.copy(slot, 64, 0)).toBe(ThreadCopy.BAD_RECORD);
    expect(thread.copy(slot, 1, 1)).toBe(ThreadCopy.BAD_RECORD);
    expect(thread.copy(slot + 1, 1, 0)).toBe(ThreadCopy.BAD_RECORD);
    for (const o of [ThreadCopy.COPIED, ThreadCopy.DUPLICATE, ThreadCopy.BAD_RECORD]) copier.account(slot, 3, o);
    expect({ copied: copier.pagesCopied, duplicates: copier.duplicates, bad: copier.badRecords }).toEqual({ copied: 1, duplicates: 1, bad: 1 });
    copier.beginRound(); // a new round: the page may be copied again
    expect(other.copy(slot, 3, 0)).toBe(ThreadCopy.COPIED);
    // The harness's own copy of a page a thread copied in the same round is a duplicate.
    copier.copy(slot, 3, 0);
    expect(copier.duplicates).toBe(2);
  });
});
