/**
 * Random perturbation at the protocol's step points, for free-running stress: at a
 * seeded fraction of the hits on chosen step points, the thread stalls for a few microseconds —
 * spinning (keeps its CPU, so the window stays open while others run elsewhere) or sleeping
 * (gives the CPU away, so another thread gets it). Real threads still race; the delays only
 * widen the windows between two steps, so that a window a few instructions wide (a record made
 * before the SPTE is writable, DIRTY published before the payload) is hit within a few runs
 * instead of never. A correct protocol has no window that delays can turn into a lost page.
 */
import { type StepHookSpec, type StepPoint, installStepHook, registerStepHookKind } from '../../kernel/step-hook.js';
import { now } from '../../base/clock.js';
import { sleepMs } from '../../kernel/sync.js';
import { Prng } from '../../base/prng.js';

/** `chance` is in 1/CHANCE_SCALE: the low 16 bits of one draw decide. */
const CHANCE_SCALE = 0x10000;
const U32_RANGE = 2 ** 32;
const US_PER_MS = 1000;

export interface StepPerturbation {
  /** Seeds this thread's stream of decisions. */
  readonly seed: number;
  /** Step points to perturb: bit s set for Step s (kernel/step-hook.ts). */
  readonly points: number;
  /** Chance that one hit on a perturbed point is delayed, in 1/65536. */
  readonly chance: number;
  /** Longest delay, in microseconds. */
  readonly maxDelayUs: number;
  /** Share of the delays that sleep (yield the CPU) rather than spin, in percent. */
  readonly yieldPercent: number;
}

/** The hook function for `p`; allocation-free per call. */
export function perturbationHook(p: StepPerturbation): (step: StepPoint, a: number, b: number) => void {
  const prng = new Prng(p.seed);
  const points = p.points >>> 0;
  const chance = Math.max(0, Math.min(CHANCE_SCALE, p.chance));
  const yieldThreshold = Math.round((p.yieldPercent / 100) * U32_RANGE);
  const maxDelayUs = Math.max(0, p.maxDelayUs);
  return (step: StepPoint): void => {
    if (((points >>> step) & 1) === 0) return;
    if ((prng.nextU32() & (CHANCE_SCALE - 1)) >= chance) return;
    const us = 1 + prng.below(maxDelayUs);
    if (prng.nextU32() < yieldThreshold) {
      sleepMs(us / US_PER_MS);
      return;
    }
    const until = now() + us / US_PER_MS;
    while (now() < until) {
      /* spin: keep the window open without giving the CPU away */
    }
  };
}

/** Perturb this thread's step points (replaces any hook installed before). */
export function installStepPerturbation(p: StepPerturbation): void {
  installStepHook(perturbationHook(p));
}

const KIND = 'perturbation';
registerStepHookKind(KIND, (params) => perturbationHook(params as StepPerturbation));

/** `p` as data a vCPU worker builds its hook from (the worker entry imports this module). */
export function perturbationSpec(p: StepPerturbation): StepHookSpec {
  return { kind: KIND, params: p };
}
