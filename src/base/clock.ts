/** The one clock every layer reads: milliseconds, monotonic, sub-microsecond resolution. */
export const now: () => number = () => performance.now();
