/** The control block of a bare free run (free-bare.ts, driven by bench/suites/free-runs.ts). */
/** Word indices of the control block (one block per bare run, shared by its threads). */
export const BareWords = { CONTROL: 0, DOORBELL: 1, WRITES: 2, WAKE: 3, ITERATION: 4, FIRST_VCPU: 8 } as const;
/** Per vCPU: its state, the last iteration after which it parked, and its stores so far (wrapping). */
export const BARE_WORDS_PER_VCPU = 3;
export const BareControl = { PAUSE: 0, RUN: 1, EXIT: 2 } as const;
export const BareState = { PARKED: 0, RUNNING: 1, HALTED: 2 } as const;

/** Bytes of the control block for `vcpus` threads. */
export function bareControlBytes(vcpus: number): number {
  return (BareWords.FIRST_VCPU + vcpus * BARE_WORDS_PER_VCPU) * Int32Array.BYTES_PER_ELEMENT;
}
