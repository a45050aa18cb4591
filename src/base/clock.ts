/** The one clock every layer reads: milliseconds, monotonic, sub-microsecond resolution. */
export const now: () => number = () => performance.now();

/** Unit conversions for the statistics, which keep times in ns. */
export const NS_PER_MS = 1e6;
export const NS_PER_US = 1e3;
