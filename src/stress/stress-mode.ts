/**
 * The two ways the stress harness runs the emulator: `free` (real worker threads racing, with
 * seeded perturbation) and `controlled` (participants parked at every step point, a scheduler
 * picking who moves). Its own module because campaigns, the mutant catalog and reports all
 * speak of modes, and none of them should need another to do so.
 */
export const STRESS_MODES = ['free', 'controlled'] as const;
export type StressMode = (typeof STRESS_MODES)[number];
