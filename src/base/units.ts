/**
 * Units, so that a conversion reads as one: sizes as the CLI counts them (MiB, GiB...) and the
 * time units of the counters (threads count stall and sleep time in ns; the clock gives ms).
 */
export const KiB = 2 ** 10;
export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
export const TiB = 2 ** 40;

export const MS_PER_S = 1000;
export const US_PER_MS = 1000;
export const US_PER_S = 1e6;
export const NS_PER_MS = 1e6;
