/**
 * The shared block of a harvester running on threads of its own (threaded-collector.ts on the
 * harness's side, thread-runner.ts in each harvester thread): the collection requests and
 * their completion, the threads' barrier, and counters every thread adds to. After it, per
 * thread, the words of ThreadWords; the reports and the first error are separate buffers.
 */
import { defineBlock } from '../abi/layout.js';
import type { VmBuffers } from '../kernel/vm.js';
import type { SharedCopierBuffers } from '../userspace/dirty-copier.js';

export const HarvesterThreadsLayout = defineBlock(
  'harvester-threads',
  [
    // The harness: the collection number asked for, whether it is final, the vCPUs stalled on a full ring.
    'REQUEST',
    'FINAL',
    'RING_FULL_COUNT',
    // Threads: ready (module loaded, VM attached), done with the request, 1 + the first failing thread.
    'READY',
    'DONE',
    'FAILED',
    // The barrier among the harvester's threads (arrivals, generation).
    'ARRIVED',
    'GENERATION',
    'TERMINATE',
    // Counters (Atomics.add): RESET marks made through the accessors, and the ioctls.
    'MARKS',
    'RESET_CALLS',
    'ENTRIES_RESET',
    'GET_CALLS',
    'CLEAR_CALLS',
    'IOCTL_ERRORS',
  ],
  [],
);

/** Per thread (Int32 words after the block): its last step, its reports of the current collection. */
export const ThreadWords = { LAST_STEP: 0, LAST_A: 1, DONE_AT: 2, REPORTS: 3, COUNT: 4 } as const;

/** ThreadWords.LAST_STEP values beyond the accessors' (HarvesterAccess): where a thread was. */
export const ThreadStep = { COLLECT: 10, RESET: 11, GET: 12, CLEAR: 13, BARRIER: 14, REPORT: 15, IDLE: 16 } as const;

/** u32 words per report: slot, offset low, offset high, what the thread's copy did (ThreadCopy). */
export const REPORT_WORDS = 4;
/** Bytes kept for the first failing thread's error text. */
export const ERROR_TEXT_BYTES = 8192;

/** What a harvester thread is handed (structured-cloned to its worker). */
export interface HarvesterThreadConfig {
  readonly url: string;
  readonly thread: number;
  readonly threads: number;
  readonly vcpus: number;
  readonly vm: VmBuffers;
  /** The run's logged memslots, by address space and id. */
  readonly slots: readonly { readonly asId: number; readonly id: number }[];
  readonly ringStart: number;
  readonly control: SharedArrayBuffer;
  readonly threadWords: SharedArrayBuffer;
  readonly ringFull: SharedArrayBuffer;
  readonly reports: SharedArrayBuffer;
  readonly errorText: SharedArrayBuffer;
  /** The run's coverage buffer (userspace's block 0 is the threads' too), or null. */
  readonly coverage: SharedArrayBuffer | null;
  /** kvm.shared: the words every thread of the harvester shares. */
  readonly sharedWords: SharedArrayBuffer;
  /** The harness's copier: the thread copies each page as its harvester reports it. Null: the harness copies at the end. */
  readonly copy: SharedCopierBuffers | null;
}

export interface HarvesterThreadApi {
  /** Serve collections until told to end; rejects when the module cannot be used. */
  run(config: HarvesterThreadConfig): Promise<void>;
}

export interface HarvesterThreadHandle {
  readonly api: { run(config: HarvesterThreadConfig): Promise<void> };
  readonly failure: string | null;
  terminate(): Promise<void>;
}

export type SpawnHarvesterThread = (thread: number) => HarvesterThreadHandle;
