/**
 * Every known bug a run can switch on, by name: the kernel's (kernel/mutants.ts, behind the
 * VM's one check) and userspace's (faults.ts, options of the collector and the run
 * controller). One bitmask names any set of them; `kernelMutants` and `userspaceFaults` split
 * it by side when a run is built.
 */
import { KERNEL_MUTANT_MASK, KernelMutant } from '../kernel/mutants.js';
import { UserspaceFault } from './faults.js';

export const Mutant = { ...KernelMutant, ...UserspaceFault } as const;
export type MutantName = keyof typeof Mutant;

/** CLI names (kebab-case) → bits. */
export const MUTANT_NAMES: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(Mutant).map(([k, v]) => [k.toLowerCase().replace(/_/g, '-'), v]),
);

export function mutantNames(bits: number): string[] {
  return Object.entries(MUTANT_NAMES)
    .filter(([, v]) => (bits & v) !== 0)
    .map(([k]) => k);
}

/** The kernel's share of a known-bug bitmask: what the VM is created with. */
export function kernelMutants(bits: number): number {
  return bits & KERNEL_MUTANT_MASK;
}

