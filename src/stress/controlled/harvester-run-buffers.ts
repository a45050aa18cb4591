/**
 * The buffers of a controlled run whose user harvester runs on threads of its own, allocated by
 * the engine and handed to every participant: userspace's copy destinations (the threads copy
 * into them as they report), each thread's reports, and the harvester's kvm.shared words.
 */
import type { Vm } from '../../kernel/vm.js';
import { REPORT_WORDS } from '../../harvester/thread-layout.js';
import { allocateHarvesterWords } from '../../harvester/shared-words.js';
import { DirtyPageCopier, type SharedCopierBuffers } from '../../userspace/dirty-copier.js';
import { dataSlots } from './controlled-vm.js';
import type { ControlledScenario } from './scenario.js';

/** Reports one thread may make in one collection beyond a ring's worth per vCPU and every page. */
const REPORT_SLACK = 1024;

/** What the harvester's threads share with userspace: its destinations, their reports, kvm.shared. */
export interface HarvesterRunBuffers {
  readonly copy: SharedCopierBuffers;
  readonly reports: readonly SharedArrayBuffer[];
  readonly sharedWords: SharedArrayBuffer;
}

/** The run's buffers when its scenario runs a user harvester on threads of its own (else null). */
export function allocateHarvesterRunBuffers(vm: Vm, s: ControlledScenario): HarvesterRunBuffers | null {
  const threads = s.userHarvesterThreads;
  if (threads === undefined) return null;
  const slots = dataSlots(vm, s);
  const capacity = vm.ringEntries * s.vcpus + slots.reduce((n, m) => n + m.pageCount, 0) + REPORT_SLACK;
  return {
    copy: DirtyPageCopier.allocateShared(slots),
    reports: Array.from({ length: threads }, () => new SharedArrayBuffer(capacity * REPORT_WORDS * 4)),
    // A C harvester's threads share its static words: they are modelled too (wasm-statics.ts).
    sharedWords: allocateHarvesterWords(s.userHarvester!.endsWith('.wasm')),
  };
}

