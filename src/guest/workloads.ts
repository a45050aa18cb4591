/**
 * Guest workloads: programs a vCPU runs forever, each a seeded stream of instructions.
 * Every store is the dirty_log_test writer's: the current iteration number goes into the
 * first 8 bytes of the page (plus the writer's id and sequence, see GuestPageWords), and the
 * iteration is loaded when the instruction is decoded, like the guest's register.
 *
 *  - random: uniform pages; a share of instructions are multi-page emulated bursts.
 *  - sequential: each vCPU sweeps all pages from its own starting point.
 *  - hotset: most writes go to a small hot set of pages shared by all vCPUs.
 *  - selftest: dirty_log_test's guest exactly: a random page, one store, no bursts.
 */
import { Prng, deriveSeed } from '../base/prng.js';
import { MS_PER_S } from '../base/units.js';
import { GuestGlobalsLayout } from './guest-memory.js';
import { type GuestProgram, InsnKind, type Instruction, MAX_INSN_PAGES, type StoreBlock } from './instruction.js';

export const WORKLOAD_KINDS = ['random', 'sequential', 'hotset', 'selftest'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/** A run of guest pages the workload may write. */
export interface PageRange {
  readonly baseGfn: number;
  readonly pageCount: number;
}

export interface WorkloadConfig {
  readonly kind: WorkloadKind;
  readonly seed: number;
  readonly ranges: readonly PageRange[];
  /** Largest multi-page (emulated) instruction, in pages; 1 disables bursts. */
  readonly burstPages: number;
  /** Share of instructions that are bursts, in percent. */
  readonly burstPercent: number;
  /** hotset: pages in the hot set (default: 1/64 of memory, at least 16). */
  readonly hotsetPages?: number;
  /** hotset: share of writes that go to the hot set, in percent (default 90). */
  readonly hotPercent?: number;
  /**
   * Instructions per iteration, then `hlt` until the iteration number changes (0 = no limit).
   * Makes two runs of one seed do exactly the same writes, whatever the timing.
   */
  readonly writesPerIteration?: number;
  /**
   * Pace this vCPU to at most this many page writes per second (each write dirties a 4 KiB
   * page: `--dirty-rate-mibs N` is N × 256). Between writes the guest idles (hlt with a timer),
   * so a paced guest leaves the host CPUs to others. 0 or absent: as fast as it can.
   */
  readonly dirtyPagesPerSecond?: number;
  /**
   * SMRAM, in address space 1 (a VM with SMM): in `percent` of its writes the vCPU takes an
   * SMI, stores to a random SMRAM page and leaves SMM (rsm) — three instructions, one write.
   */
  readonly smm?: { readonly range: PageRange; readonly percent: number };
}

/** A paced guest may bank at most this much unused write budget (then it is forgotten). */
const PACING_CREDIT_MS = 10;
/** Longest single idle: the guest re-checks its budget (and the iteration) at least this often. */
const PACING_MAX_IDLE_MS = 5;
/** Shares are drawn as u32: a share p of the draws is the threshold p × 2^32. */
const U32_RANGE = 2 ** 32;
const PERCENT = 100;
/**
 * hotset's defaults: a hot set far smaller than memory (1/64 of the pages, as a guest's hot loop
 * touches), yet at least 16 pages so that a small guest's vCPUs still spread over several, and
 * 90 % of the writes in it: a hot set with background writes everywhere else.
 */
const HOTSET_SHARE_DIVISOR = 64;
const MIN_HOTSET_PAGES = 16;
const DEFAULT_HOT_PERCENT = 90;
/** Stream of the run seed that places the hot set (shared by every vCPU, so not a vCPU index). */
const HOTSET_STREAM = 0x7fff;

/** Where a vCPU is in an SMM sequence (SMI, SMRAM store, rsm). */
const SmmStep = { NONE: 0, ENTERED: 1, STORED: 2 } as const;
type SmmStep = (typeof SmmStep)[keyof typeof SmmStep];

export function totalPages(ranges: readonly PageRange[]): number {
  let n = 0;
  for (const r of ranges) n += r.pageCount;
  return n;
}

export class WorkloadProgram implements GuestProgram {
  private readonly prng: Prng;
  private readonly pageCount: number;
  private readonly starts: Float64Array;
  private readonly bases: Float64Array;
  private readonly burstPages: number;
  private readonly burstThreshold: number;
  private readonly hotStart: number;
  private readonly hotCount: number;
  private readonly hotThreshold: number;
  private cursor: number;
  private readonly writeLimit: number;
  private iterationSeen = -1;
  private writesThisIteration = 0;
  /** Pacing (dirtyPagesPerSecond): a token bucket of page writes, refilled from the clock. */
  private readonly pagesPerMs: number;
  private readonly paceCapacity: number;
  private paceTokens = 0;
  private paceLastMs = -1;
  /** SMM: the share of writes that are SMI / SMRAM store / rsm sequences, and where one is. */
  private readonly smiThreshold: number;
  private smmStep: SmmStep = SmmStep.NONE;
  /**
   * Block decode (peekStores) applies: a sequential guest with no bursts, SMIs or pacing draws
   * nothing from its PRNG, so its next stores can be read without consuming them.
   */
  private readonly blocks: boolean;
  /** The iteration the last block was peeked with (its stores' value). */
  private peekIteration = 0;

  constructor(
    private readonly config: WorkloadConfig,
    vcpuIndex: number,
    vcpuCount: number,
    /** The guest globals block (ITERATION). */
    private readonly globals: Int32Array,
  ) {
    this.pageCount = totalPages(config.ranges);
    if (this.pageCount <= 0) throw new RangeError('workload: no guest pages to write');
    this.starts = new Float64Array(config.ranges.length);
    this.bases = new Float64Array(config.ranges.length);
    let start = 0;
    config.ranges.forEach((r, i) => {
      this.starts[i] = start;
      this.bases[i] = r.baseGfn;
      start += r.pageCount;
    });
    this.prng = new Prng(deriveSeed(config.seed, vcpuIndex));
    const selftest = config.kind === 'selftest';
    this.burstPages = selftest ? 1 : Math.max(1, Math.min(MAX_INSN_PAGES, config.burstPages, this.pageCount));
    this.burstThreshold = this.burstPages > 1 ? Math.round((config.burstPercent / PERCENT) * U32_RANGE) : 0;
    this.cursor = Math.floor((this.pageCount * vcpuIndex) / Math.max(1, vcpuCount));
    const hot = Math.min(this.pageCount, config.hotsetPages ?? Math.max(MIN_HOTSET_PAGES, Math.floor(this.pageCount / HOTSET_SHARE_DIVISOR)));
    this.hotCount = hot;
    // The hot set is shared by every vCPU: derive its place from the run seed alone.
    this.hotStart = new Prng(deriveSeed(config.seed, HOTSET_STREAM)).below(this.pageCount - hot + 1);
    this.hotThreshold = Math.round(((config.hotPercent ?? DEFAULT_HOT_PERCENT) / PERCENT) * U32_RANGE);
    this.writeLimit = config.writesPerIteration ?? 0;
    this.pagesPerMs = Math.max(0, config.dirtyPagesPerSecond ?? 0) / MS_PER_S;
    this.paceCapacity = Math.max(1, this.pagesPerMs * PACING_CREDIT_MS);
    this.smiThreshold = config.smm ? Math.round((config.smm.percent / PERCENT) * U32_RANGE) : 0;
    this.blocks = config.kind === 'sequential' && this.burstThreshold === 0 && this.smiThreshold === 0 && this.pagesPerMs === 0;
  }

  /**
   * Block decode (GuestProgram.peekStores), sequential guests only: the stores from the cursor
   * on, as a strided run up to the end of the cursor's range, and no further than the
   * iteration's write limit. The value is the iteration, loaded once for the block.
   */
  peekStores(block: StoreBlock, max: number): number {
    if (!this.blocks) return 0;
    const iteration = Atomics.load(this.globals, GuestGlobalsLayout.words.ITERATION);
    let n = max;
    if (this.writeLimit > 0) n = Math.min(n, this.writeLimit - (iteration === this.iterationSeen ? this.writesThisIteration : 0));
    if (n <= 0) return 0; // decode halts
    const starts = this.starts;
    const index = this.cursor;
    let r = starts.length - 1;
    while (r > 0 && starts[r]! > index) r--;
    const rangeEnd = r + 1 < starts.length ? starts[r + 1]! : this.pageCount;
    block.first = this.bases[r]! + (index - starts[r]!);
    block.stride = 1;
    block.value = iteration;
    this.peekIteration = iteration;
    return Math.min(n, rangeEnd - index);
  }

  /** What `n` decodes of the peeked block would have done: the write count, the cursor. */
  consumeStores(n: number): void {
    if (this.writeLimit > 0) {
      if (this.peekIteration !== this.iterationSeen) {
        this.iterationSeen = this.peekIteration;
        this.writesThisIteration = 0;
      }
      this.writesThisIteration += n;
    }
    this.cursor = (this.cursor + n) % this.pageCount;
  }

  /** The next instruction of an SMM sequence: the SMRAM store after the SMI, then the rsm. */
  private continueSmm(insn: Instruction, iteration: number): void {
    insn.exitAfter = false;
    insn.count = 0;
    if (this.smmStep === SmmStep.ENTERED) {
      const range = this.config.smm!.range;
      insn.kind = InsnKind.STORE;
      insn.count = 1;
      insn.value = iteration;
      insn.storesPerPage = 1;
      insn.gfns[0] = range.baseGfn + this.prng.below(range.pageCount);
      this.smmStep = SmmStep.STORED;
    } else {
      insn.kind = InsnKind.RSM;
      this.smmStep = SmmStep.NONE;
    }
  }

  /**
   * Paced guests: true (and `insn` made an IDLE for as long as the budget needs) when no write
   * is allowed yet. Bursts may take the bucket below zero; the debt is idled off afterwards.
   */
  private paceIdle(insn: Instruction): boolean {
    const t = performance.now();
    if (this.paceLastMs < 0) this.paceLastMs = t;
    this.paceTokens = Math.min(this.paceCapacity, this.paceTokens + (t - this.paceLastMs) * this.pagesPerMs);
    this.paceLastMs = t;
    if (this.paceTokens >= 1) return false;
    insn.kind = InsnKind.IDLE;
    insn.count = 0;
    insn.idleMs = Math.min(PACING_MAX_IDLE_MS, (1 - this.paceTokens) / this.pagesPerMs);
    return true;
  }

  decode(insn: Instruction): void {
    // Atomics: userspace stores ITERATION while the vCPUs run (the migration advances it every
    // round), and a plain load may be hoisted out of the vCPU's loop and never see the change.
    const iteration = Atomics.load(this.globals, GuestGlobalsLayout.words.ITERATION);
    if (this.smmStep !== SmmStep.NONE) {
      this.continueSmm(insn, iteration);
      return;
    }
    if (this.pagesPerMs > 0 && this.paceIdle(insn)) return;
    if (this.writeLimit > 0) {
      if (iteration !== this.iterationSeen) {
        this.iterationSeen = iteration;
        this.writesThisIteration = 0;
      }
      if (this.writesThisIteration >= this.writeLimit) {
        insn.kind = InsnKind.HALT;
        insn.count = 0;
        return;
      }
      this.writesThisIteration++;
    }
    insn.value = iteration;
    insn.exitAfter = false;
    insn.storesPerPage = 1;
    if (this.smiThreshold > 0 && this.prng.nextU32() < this.smiThreshold) {
      insn.kind = InsnKind.SMI;
      insn.count = 0;
      this.smmStep = SmmStep.ENTERED;
      return;
    }
    const burst = this.burstThreshold > 0 && this.prng.nextU32() < this.burstThreshold;
    const count = burst ? 2 + this.prng.below(this.burstPages - 1) : 1;
    let first: number;
    switch (this.config.kind) {
      case 'sequential':
        first = this.cursor;
        this.cursor = (this.cursor + count) % this.pageCount;
        break;
      case 'hotset':
        first =
          this.prng.nextU32() < this.hotThreshold
            ? this.hotStart + this.prng.below(this.hotCount)
            : this.prng.below(this.pageCount);
        break;
      default:
        first = this.prng.below(this.pageCount);
    }
    insn.kind = burst ? InsnKind.EMULATED : InsnKind.STORE;
    insn.count = count;
    if (this.pagesPerMs > 0) this.paceTokens -= count;
    for (let i = 0; i < count; i++) insn.gfns[i] = this.gfnOf((first + i) % this.pageCount);
  }

  /** Map a page number in [0, pageCount) to its gfn. */
  private gfnOf(index: number): number {
    const starts = this.starts;
    let r = starts.length - 1;
    while (r > 0 && starts[r]! > index) r--;
    return this.bases[r]! + (index - starts[r]!);
  }
}
