/**
 * The per-step invariant on a VM driven by hand (no workers): a written page must be recorded,
 * protected, held by userspace, or inside an allowed window; the first step where it is none of
 * these is reported, with an explanation.
 */
import { describe, expect, it } from 'vitest';
import { KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_DIRTY_GFN_F_RESET, PAGE_WORDS } from '../../../../src/abi/constants.js';
import { DIRTY_GFN_WORDS } from '../../../../src/abi/dirty-gfn.js';
import { GuestPageWords } from '../../../../src/guest/guest-memory.js';
import { SpteBits } from '../../../../src/kernel/memslot-layout.js';
import { Step } from '../../../../src/kernel/step-hook.js';
import { Vm } from '../../../../src/kernel/vm.js';
import { explainViolation, formatExplanation } from '../../../../src/stress/controlled/explain.js';
import { InvariantChecker } from '../../../../src/stress/controlled/invariant.js';
import { LEDGER_PAGE_WORDS, LedgerPageWords, pageLedgerBytes, pageLedgerViews } from '../../../../src/stress/controlled/ledger-layout.js';
import { ParticipantLayout, ParticipantStatus } from '../../../../src/stress/controlled/token-layout.js';
import { SchedulerToken, participantBlock } from '../../../../src/stress/controlled/token.js';

const PAGES = 8;
const P = ParticipantLayout.words;

function setup() {
  const vm = Vm.create();
  vm.enableCap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 4096);
  const slot = vm.createMemslot({ id: 1, baseGfn: 0x100, pageCount: PAGES, logDirty: true });
  vm.createVcpu();
  const ledgerBuf = new SharedArrayBuffer(pageLedgerBytes(PAGES, 1));
  const ledger = pageLedgerViews(ledgerBuf, PAGES, 1);
  const token = new SchedulerToken(2);
  const checker = new InvariantChecker(vm, slot, 1, ledger);
  const write = (page: number, seq: number): void => {
    slot.mem32[page * PAGE_WORDS + GuestPageWords.ITERATION_LO] = 1;
    slot.mem32[page * PAGE_WORDS + GuestPageWords.WRITER_SEQ] = seq;
  };
  const copy = (page: number): void => {
    const l = page * LEDGER_PAGE_WORDS;
    ledger.pages[l + LedgerPageWords.ITERATION] = slot.mem32[page * PAGE_WORDS + GuestPageWords.ITERATION_LO]!;
    ledger.pages[l + LedgerPageWords.SEQ] = slot.mem32[page * PAGE_WORDS + GuestPageWords.WRITER_SEQ]!;
    ledger.pages[l + LedgerPageWords.EMITS]!++;
  };
  const park = (p: number, step: number, a: number, b: number): void => {
    const w = participantBlock(token.buffer, p).i32;
    w[P.STATUS] = ParticipantStatus.PARKED;
    w[P.STEP] = step;
    w[P.ARG_A] = a;
    w[P.ARG_B] = b;
  };
  return { vm, slot, ledger, token, checker, write, copy, park };
}

describe('the per-step invariant', () => {
  it('a page written while writable, with no record and no window, breaks it at that step', () => {
    const t = setup();
    Atomics.or(t.slot.spte, 3, SpteBits.WRITABLE);
    t.checker.check(0, 1, t.token);
    expect(t.checker.violation).toBeNull();
    t.write(3, 1);
    t.checker.check(1, 1, t.token);
    expect(t.checker.violation).toMatchObject({ step: 1, participant: 1, page: 3, gfn: 0x103 });
    const e = explainViolation(t.checker.violation!, t.checker.journal, [], { vcpus: 1, extras: [] }, null);
    expect(formatExplanation(e).join('\n')).toMatch(/page 3 written[\s\S]*✗ page 3: unrecorded, unprotected/);
  });

  it('a DIRTY entry, a window (the fault between its swap and its mark) or write protection keep it', () => {
    const t = setup();
    Atomics.or(t.slot.spte, 2, SpteBits.WRITABLE);
    t.park(1, Step.FAULT_MARK_DIRTY, 0x102, 0);
    t.write(2, 1);
    t.checker.check(0, 1, t.token);
    expect(t.checker.violation).toBeNull();
    t.vm.ring(0)!.push(t.slot.encodedSlot, 2, 0);
    t.park(1, Step.GUEST_ENTRY, 0, 0);
    t.checker.check(1, 1, t.token);
    expect(t.checker.violation).toBeNull();
    // A page written while protected (by a vCPU whose TLB had it) is only safe while no TLB caches it.
    t.write(5, 1);
    t.checker.check(2, 1, t.token);
    expect(t.checker.violation).toBeNull();
    t.ledger.tlb[0]![5] = 1;
    t.checker.check(3, 1, t.token);
    expect(t.checker.violation?.page).toBe(5);
  });

  it('a record userspace took is held until it copies the page; a write after the copy needs a new record', () => {
    const t = setup();
    Atomics.or(t.slot.spte, 4, SpteBits.WRITABLE);
    t.write(4, 1);
    t.vm.ring(0)!.push(t.slot.encodedSlot, 4, 0);
    t.checker.check(0, 1, t.token);
    // Userspace harvests: DIRTY → RESET.
    Atomics.store(t.vm.ring(0)!.i32, 0 * DIRTY_GFN_WORDS, KVM_DIRTY_GFN_F_RESET);
    t.checker.check(1, 0, t.token);
    t.write(4, 2);
    t.checker.check(2, 1, t.token);
    expect(t.checker.violation).toBeNull();
    t.copy(4); // copied before any reset protected it: the copy-before-reset bug
    t.checker.check(3, 0, t.token);
    expect(t.checker.violation).toBeNull();
    t.write(4, 3);
    t.checker.check(4, 1, t.token);
    expect(t.checker.violation).toMatchObject({ step: 4, page: 4 });
    expect(t.checker.journal.map((j) => j.kind)).toEqual(expect.arrayContaining(['recorded', 'harvested', 'collected', 'written']));
  });
});
