/**
 * Outcomes of stress runs, jcstress-style: every run is classified by what it showed, each
 * outcome belongs to a class — acceptable, interesting (allowed but notable), forbidden (the
 * protocol was violated) or error (the run itself failed) — and a campaign counts runs per
 * outcome in a table. A run can show several outcomes; it is counted under the most severe.
 */
export type OutcomeClass = 'acceptable' | 'interesting' | 'forbidden' | 'error';

/** Every outcome, most severe first (the order decides a run's primary outcome). */
export const OUTCOMES = {
  'lost-page': { cls: 'forbidden', what: 'a write that no collection reported' },
  'copy-mismatch': { cls: 'forbidden', what: 'the destination differs from guest memory after the final sync' },
  'wrong-value': { cls: 'forbidden', what: 'a reported page holds a value no store of the iteration wrote' },
  'unlogged-write': {
    cls: 'forbidden',
    what: 'at some step a page written since its last collection was neither recorded, nor write-protected, nor inside an allowed window (controlled)',
  },
  'reset-mismatch': { cls: 'forbidden', what: 'KVM_RESET_DIRTY_RINGS reset a different number of entries than harvested' },
  'bad-entry': { cls: 'forbidden', what: 'a collected record named no page of any memslot' },
  'kernel-bug': { cls: 'forbidden', what: 'the kernel made an access a correct kernel never makes' },
  'kernel-warning': { cls: 'forbidden', what: 'a kernel WARN (a push into a full ring, an unloggable write)' },
  'wedged-vcpu': { cls: 'forbidden', what: 'a vCPU that can never run again, or no guest progress' },
  'track-violation': {
    cls: 'forbidden',
    what: 'page write-tracking: a notification lost, reordered or late, or a shadow page table out of sync',
  },
  deadlock: { cls: 'forbidden', what: 'no participant can move (controlled)' },
  'step-limit': { cls: 'forbidden', what: 'the run did not end within its step budget: a livelock (controlled)' },
  nondeterministic: { cls: 'error', what: 'the same seed or choices gave a different trace (controlled)' },
  'harness-error': { cls: 'error', what: 'the run itself failed: a worker crashed or hung, an exception' },
  'ring-full-page': { cls: 'interesting', what: 'exit 31 left a page logged before its store happened (tolerated)' },
  duplicates: { cls: 'interesting', what: 'a page was recorded twice in one collection (racing rings, or the emulated path)' },
  'long-stall': { cls: 'interesting', what: 'a vCPU stalled on a full ring for 20 ms or more (free)' },
  'hostile-userspace': { cls: 'interesting', what: 'userspace rewrote ring entries; the kernel survived them' },
  'unaligned-clear-refused': { cls: 'interesting', what: 'an unaligned CLEAR was refused (EINVAL) and retried aligned' },
  'harvester-errno': { cls: 'interesting', what: "the user's harvester made an ioctl that returned an errno, as KVM returns it" },
  clean: { cls: 'acceptable', what: '0 lost pages and nothing notable' },
} as const satisfies Record<string, { cls: OutcomeClass; what: string }>;

export type OutcomeKind = keyof typeof OUTCOMES;
const ORDER = Object.keys(OUTCOMES) as OutcomeKind[];

export function outcomeClass(kind: OutcomeKind): OutcomeClass {
  return OUTCOMES[kind].cls;
}

/** The most severe of `kinds` (`clean` when empty). */
export function primaryOutcome(kinds: readonly OutcomeKind[]): OutcomeKind {
  let best: OutcomeKind = 'clean';
  for (const k of kinds) if (ORDER.indexOf(k) < ORDER.indexOf(best)) best = k;
  return best;
}

/** Whether any of `kinds` is forbidden: the run caught a protocol violation. */
export function isForbidden(kinds: readonly OutcomeKind[]): boolean {
  return kinds.some((k) => OUTCOMES[k].cls === 'forbidden');
}

/** A run worth a trace file: a forbidden outcome, or the run itself failed (an error class). */
export function isFailing(kinds: readonly OutcomeKind[]): boolean {
  return kinds.some((k) => OUTCOMES[k].cls === 'forbidden' || OUTCOMES[k].cls === 'error');
}

export interface OutcomeRow {
  readonly outcome: OutcomeKind;
  readonly cls: OutcomeClass;
  /** Runs whose primary outcome this is. */
  readonly runs: number;
  /** Seed of the first such run. */
  readonly firstSeed: number;
}

/** Runs counted per primary outcome. */
export class OutcomeTable {
  private readonly counts = new Map<OutcomeKind, { runs: number; firstSeed: number }>();

  add(kinds: readonly OutcomeKind[], seed: number): void {
    const p = primaryOutcome(kinds);
    const row = this.counts.get(p);
    if (row) row.runs++;
    else this.counts.set(p, { runs: 1, firstSeed: seed });
  }

  rows(): OutcomeRow[] {
    return ORDER.filter((k) => this.counts.has(k)).map((k) => ({ outcome: k, cls: OUTCOMES[k].cls, ...this.counts.get(k)! }));
  }

  byClass(cls: OutcomeClass): number {
    let n = 0;
    for (const [k, v] of this.counts) if (OUTCOMES[k].cls === cls) n += v.runs;
    return n;
  }
}
