/**
 * A weak memory model for controlled runs: per-location store histories with vector clocks,
 * the scheme of tsan11 (Lidbury and Donaldson, "Dynamic race detection for C++11", POPL 2017)
 * as Miri implements it, with loom's idea that which store a load reads is an explicit choice.
 *
 * Every modelled location keeps its newest K stores in modification order (= the order in
 * which they executed). A load may return any of them back to the first one that it must see:
 *  - one that happens-before the load (coherence write→read), or
 *  - one that some load which happens-before this load already read (coherence read→read), or
 *  - on x86, one already visible to every thread (a store buffer drains in order).
 * Which one is a decision of the caller (the scheduler's chooser), never of this class. Index 0
 * is always the newest store, so a caller that always answers 0 gets sequential consistency
 * for the modelled locations. The progress rule of loom keeps re-polling loops finite: a store
 * that a thread read before its last yield point is not offered again once a newer one exists.
 *
 * Clocks: acquire loads join the clock the store carries; relaxed loads add it to an acquire
 * fence accumulator (smp_rmb joins it); release stores carry the writer's clock, relaxed
 * stores the clock of its last release fence (smp_wmb); smp_mb joins through one global
 * clock. On arm64, releases are A-cumulative (as in LKMM): they also publish what the thread's
 * relaxed loads observed. Pure: no Atomics, no workers; the caller passes the thread id.
 */
import { assert } from '../../base/assert.js';
import { Access, Atomic, Barrier, OP_SHIFT, Op } from './ordering.js';
import { ModelState } from './model-state.js';
import { ELEM_FIXED_WORDS, ElemWords, INIT_WRITER, WmmHeaderLayout } from './wmm-layout.js';

export { MAX_HISTORY, MIN_HISTORY, allocateWmmState } from './model-state.js';

const H = WmmHeaderLayout.words;

export class WeakModel extends ModelState {
  /** Element addresses the last `candidates` call found, newest first. */
  private readonly cand: Int32Array;
  private candLoc = -1;
  private candThread = -1;
  private candCount = 0;
  /** The newest element an RMW read (between rmwRead and rmwWrite/rmwFail). */
  private rmwElem = -1;
  private rmwFull = false;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    super(buffer);
    this.cand = new Int32Array(this.history);
  }

  // ----------------------------------------------------------------------------------------
  // Loads: candidates, then the read of the chosen one

  /**
   * The stores thread `t` may read at `loc` now, newest first; returns how many (at least 1).
   * The caller picks an index below that and passes it to `read` before anything else happens.
   */
  candidates(t: number, loc: number): number {
    const st = this.state;
    const slot = this.slotOf(loc);
    const clock = this.clockOff(t);
    const lastYield = st[this.lastYieldOff(t)]!;
    const seenT = ELEM_FIXED_WORDS + this.threads + t;
    let n = 0;
    for (let j = this.countOf(slot) - 1; j >= 0; j--) {
      const e = this.elem(slot, j);
      const seen = st[e + seenT]!;
      // loom's progress rule: what this thread read before its last yield is not offered
      // again once something newer exists, so a re-polling loop reaches the newest store.
      if (!(seen >= 0 && seen <= lastYield && n > 0)) this.cand[n++] = e;
      if (this.mustSee(e, clock)) break;
    }
    this.candLoc = loc;
    this.candThread = t;
    this.candCount = n;
    return n;
  }

  /** Read candidate `choice` (0 = newest) of the last `candidates(t, loc)`; returns the low word. */
  read(t: number, loc: number, access: number, choice: number): number {
    assert(
      this.candLoc === loc && this.candThread === t && choice >= 0 && choice < this.candCount,
      `weak memory model: read of candidate ${choice} at location ${loc} without its candidates`,
    );
    this.candLoc = -1;
    const e = this.cand[choice]!;
    this.observe(t, e, access === Access.ACQUIRE || this.x86);
    if (choice > 0) this.state[H.STALE_READS]!++;
    this.log(t, (Op.LOAD << OP_SHIFT) | access, loc, e, choice, this.candCount);
    const st = this.state;
    this.hi = st[e + ElemWords.HI]!;
    return st[e + ElemWords.LO]!;
  }

  // ----------------------------------------------------------------------------------------
  // Stores, read-modify-writes, fences

  store(t: number, loc: number, lo: number, hi: number, access: number): void {
    const slot = this.slotOf(loc);
    this.tick(t);
    const e = this.append(slot, t, lo, hi);
    // On x86 every plain store is a release (TSO keeps stores in order).
    if (access === Access.RELEASE || this.x86) this.releaseClock(t, e + ELEM_FIXED_WORDS);
    else this.copy(e + ELEM_FIXED_WORDS, this.relSnapOff(t));
    this.log(t, (Op.STORE << OP_SHIFT) | access, loc, e, 0, 0);
  }

  /** The read half of an atomic read-modify-write: always the newest store. Returns the low word. */
  rmwRead(t: number, loc: number, kind: number): number {
    // x86 has no unlocked atomics: every RMW is a full barrier there.
    const full = kind === Atomic.FULL || this.x86;
    if (full) this.fullFence(t);
    const e = this.newestElem(this.slotOf(loc));
    this.observe(t, e, false);
    this.rmwElem = e;
    this.rmwFull = full;
    const st = this.state;
    this.hi = st[e + ElemWords.HI]!;
    return st[e + ElemWords.LO]!;
  }

  /** The write half: the new value continues the release sequence of the store it read. */
  rmwWrite(t: number, loc: number, lo: number, hi: number, kind: number): void {
    const read = this.rmwElem;
    assert(read >= 0, 'weak memory model: rmwWrite without rmwRead');
    // The release sequence: the new store carries what the store it replaced carried, and
    // this thread's last release-fence clock (set just now by the leading fence when full).
    const e = this.append(this.slotOf(loc), t, lo, hi);
    const st = this.state;
    const sync = ELEM_FIXED_WORDS;
    const rel = this.relSnapOff(t);
    for (let u = 0; u < this.threads; u++) st[e + sync + u] = Math.max(st[read + sync + u]!, st[rel + u]!);
    this.log(t, (Op.RMW << OP_SHIFT) | kind, loc, e, 0, 0);
    this.rmwElem = -1;
    if (this.rmwFull) this.fullFence(t);
  }

  /** A read-modify-write that stored nothing (a failed compare-and-swap). */
  rmwFail(t: number, loc: number, kind: number): void {
    const read = this.rmwElem;
    assert(read >= 0, 'weak memory model: rmwFail without rmwRead');
    this.log(t, (Op.LOAD << OP_SHIFT) | Access.ONCE, loc, read, 0, 1);
    this.rmwElem = -1;
    // A failed cmpxchg orders nothing on arm64; x86's locked instruction is a barrier anyway.
    if (this.x86 && kind !== Atomic.RELAXED) this.fullFence(t);
  }

  fence(t: number, barrier: number): void {
    if (barrier === Barrier.MB) this.fullFence(t);
    else if (!this.x86) {
      // On x86 smp_rmb and smp_wmb only stop the compiler: TSO already orders what they order.
      if (barrier === Barrier.RMB) this.join(this.clockOff(t), this.acqAccOff(t));
      else this.releaseClock(t, this.relSnapOff(t));
    }
    this.log(t, (Op.FENCE << OP_SHIFT) | barrier, -1, -1, 0, 0);
  }

  // ----------------------------------------------------------------------------------------
  // Synchronization outside the modelled locations, and progress

  /** Release `t`'s clock into sync object `obj` (an unlock, a store to a control word). */
  syncRelease(t: number, obj: number): void {
    this.tick(t);
    const dst = this.syncOff(obj);
    this.join(dst, this.clockOff(t));
    if (this.cumulative) this.join(dst, this.observedOff(t));
    if (this.x86) this.commitOwn(t);
  }

  /** Acquire sync object `obj` into `t`'s clock (a lock, a wait on a control word). */
  syncAcquire(t: number, obj: number): void {
    this.join(this.clockOff(t), this.syncOff(obj));
  }

  /** A point where `t` yields (a wait, a re-poll): see `candidates`. */
  yieldPoint(t: number): void {
    this.state[this.lastYieldOff(t)] = this.ownTime(t);
  }

  get staleReads(): number {
    return this.state[H.STALE_READS]!;
  }

  // ----------------------------------------------------------------------------------------
  // Internals

  /** Whether thread `t` (its clock at `clock`) must see element `e` or something newer. */
  private mustSee(e: number, clock: number): boolean {
    const st = this.state;
    const p = this.threads;
    const writer = st[e + ElemWords.WRITER]!;
    const ts = st[e + ElemWords.TS]!;
    if (writer === INIT_WRITER || ts <= st[clock + writer]!) return true;
    if (this.x86 && ts <= st[this.committedOff(writer)]!) return true;
    const seen = e + ELEM_FIXED_WORDS + p;
    for (let u = 0; u < p; u++) {
      const at = st[seen + u]!;
      if (at >= 0 && at <= st[clock + u]!) return true;
    }
    return false;
  }

  /** The effects of `t` reading element `e`: its clock, its first-read time, x86's visibility. */
  private observe(t: number, e: number, acquire: boolean): void {
    const st = this.state;
    this.tick(t);
    const clock = this.clockOff(t);
    const seen = e + ELEM_FIXED_WORDS + this.threads + t;
    if (st[seen]! < 0) st[seen] = st[clock + t]!;
    const sync = e + ELEM_FIXED_WORDS;
    const writer = st[e + ElemWords.WRITER]!;
    const ts = st[e + ElemWords.TS]!;
    if (acquire) {
      this.join(clock, sync);
    } else {
      this.join(this.acqAccOff(t), sync);
      if (this.cumulative) {
        const obs = this.observedOff(t);
        this.join(obs, sync);
        if (writer !== INIT_WRITER && st[obs + writer]! < ts) st[obs + writer] = ts;
      }
    }
    // x86: a store another thread has read has left its writer's store buffer, and so have
    // all the writer's earlier stores (the buffer drains in order).
    if (this.x86 && writer !== INIT_WRITER && writer !== t) {
      const c = this.committedOff(writer);
      if (st[c]! < ts) st[c] = ts;
    }
  }

  private fullFence(t: number): void {
    const clock = this.clockOff(t);
    const sc = this.scOff();
    this.join(clock, this.acqAccOff(t));
    this.join(sc, clock);
    this.join(clock, sc);
    this.releaseClock(t, this.relSnapOff(t));
    if (this.x86) this.commitOwn(t);
  }

  /** x86: every store `t` made so far is visible to all (a locked instruction drains the buffer). */
  private commitOwn(t: number): void {
    const c = this.committedOff(t);
    const own = this.ownTime(t);
    if (this.state[c]! < own) this.state[c] = own;
  }

  /** dst := t's clock ⊔ what t observed (the clock a release publishes). */
  private releaseClock(t: number, dst: number): void {
    this.copy(dst, this.clockOff(t));
    if (this.cumulative) this.join(dst, this.observedOff(t));
  }
}
