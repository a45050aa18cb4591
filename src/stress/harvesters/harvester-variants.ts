/**
 * The harvesters the stress harness can put in userspace's place: the log mode's standard
 * collector, or a variant that exercises a path the standard ones never take (unaligned CLEARs,
 * a hostile userspace rewriting ring entries). Each variant is correct against a correct kernel.
 */
import type { Memslot } from '../../kernel/memslots.js';
import type { UserspaceFaults } from '../../userspace/faults.js';
import type { Vm } from '../../kernel/vm.js';
import { HostileRingCollector } from './hostile-ring-collector.js';
import { type LogCollector, type LogMode, SelfReapLogCollector, createCollector } from '../../userspace/log-collectors.js';
import type { SharedReaper } from '../../userspace/self-reaper.js';
import { UnalignedClearCollector } from './unaligned-clear-collector.js';

export const HARVESTER_VARIANTS = ['standard', 'unaligned-clear', 'hostile-wrap'] as const;
export type HarvesterVariant = (typeof HARVESTER_VARIANTS)[number];

/** Which log mode a variant needs (standard works with all). */
export function harvesterLogMode(variant: HarvesterVariant): LogMode | null {
  return variant === 'unaligned-clear' ? 'clear' : variant === 'hostile-wrap' ? 'ring' : null;
}

/** What a variant did that a standard harvester never does. */
export interface HarvesterVariantStats {
  /** Resets carrying a rewritten, wrapping entry pair (hostile-wrap). */
  hostileRewrites: number;
  /** Unaligned CLEARs issued / refused with EINVAL / accepted (unaligned-clear). */
  unalignedClears: number;
  unalignedRefused: number;
  unalignedAccepted: number;
  /** A user's harvester (--harvester): its ioctls that returned an errno. */
  harvesterErrnos?: number;
}

export interface Harvester {
  readonly collector: LogCollector;
  variantStats(): HarvesterVariantStats;
}

export function createHarvester(
  variant: HarvesterVariant,
  log: LogMode,
  vm: Vm,
  vcpus: number,
  slots: readonly Memslot[],
  clearChunkPages: number,
  faults: UserspaceFaults,
  /** The rings' first free-running index (Vm.presetRingIndex). */
  ringStart = 0,
  /**
   * The run's shared reaper when it self-reaps (RunConfig.selfReap): the standard ring harvester
   * is then the collector that drains it, so every page a vCPU thread reaped reaches the oracle
   * and the copy. The variants ignore it: each is the rings' only reaper (the hand-off design).
   */
  reaper: SharedReaper | null = null,
): Harvester {
  const need = harvesterLogMode(variant);
  if (need !== null && need !== log) throw new Error(`harvester ${variant} needs --log ${need}, not ${log}`);
  const none = { hostileRewrites: 0, unalignedClears: 0, unalignedRefused: 0, unalignedAccepted: 0 };
  switch (variant) {
    case 'standard': {
      const collector =
        reaper !== null && log === 'ring' && ringStart === 0
          ? new SelfReapLogCollector(vm, reaper, slots, faults)
          : createCollector(log, vm, vcpus, slots, clearChunkPages, faults, ringStart);
      return { collector, variantStats: () => none };
    }
    case 'unaligned-clear': {
      const collector = new UnalignedClearCollector(vm, slots, clearChunkPages);
      return {
        collector,
        variantStats: () => ({
          ...none,
          unalignedClears: collector.unaligned.attempts,
          unalignedRefused: collector.unaligned.refused,
          unalignedAccepted: collector.unaligned.accepted,
        }),
      };
    }
    case 'hostile-wrap': {
      const collector = new HostileRingCollector(vm, vcpus, slots, faults, ringStart);
      return { collector, variantStats: () => ({ ...none, hostileRewrites: collector.rewrites }) };
    }
  }
}
