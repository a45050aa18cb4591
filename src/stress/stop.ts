/**
 * Stopping a campaign from outside (Ctrl-C, SIGTERM, a caller's AbortSignal): the campaign
 * makes no new run once asked, and the run under way gets a bounded grace to end — past it,
 * the run is abandoned (its workers are terminated with the harness) so that what was done
 * can still be reported.
 */

/** How long the run under way may take to end once a stop is asked for. */
export const STOP_GRACE_MS = 10_000;

/** `work`'s result, or 'abandoned' when `stop` fires and `work` does not end within `graceMs` of it. */
export async function finishWithin<T>(work: Promise<T>, stop: AbortSignal | undefined, graceMs: number = STOP_GRACE_MS): Promise<T | 'abandoned'> {
  if (stop === undefined) return work;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const grace = new Promise<'abandoned'>((resolve) => {
    const arm = (): void => {
      timer = setTimeout(() => resolve('abandoned'), graceMs);
    };
    if (stop.aborted) arm();
    else {
      onAbort = arm;
      stop.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([work, grace]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) stop.removeEventListener('abort', onAbort);
  }
}
