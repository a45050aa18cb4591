/**
 * Cross-origin isolation where the host sends no headers: register public/coi-sw.js (it adds
 * COOP/COEP to every same-origin response) and reload once under its control. A reload that
 * is still not isolated is not retried (the page then explains what is missing).
 */
const RELOAD_MARK = 'dirtyring-coi-reloaded';
/** Bounded: a browser that never activates the worker leaves the page to explain itself. */
const ACTIVATE_TIMEOUT_MS = 5_000;

export type IsolationState = 'isolated' | 'reloading' | 'unavailable';

export async function ensureIsolation(baseUrl: string): Promise<IsolationState> {
  if (crossOriginIsolated) {
    sessionStorage.removeItem(RELOAD_MARK);
    return 'isolated';
  }
  if (!('serviceWorker' in navigator) || !isSecureContext || sessionStorage.getItem(RELOAD_MARK) !== null) return 'unavailable';
  try {
    const registration = await navigator.serviceWorker.register(`${baseUrl}coi-sw.js`, { scope: baseUrl });
    if (!navigator.serviceWorker.controller) {
      await Promise.race([
        navigator.serviceWorker.ready,
        new Promise((resolve) => setTimeout(resolve, ACTIVATE_TIMEOUT_MS)),
      ]);
      if (!registration.active) return 'unavailable';
    }
  } catch {
    return 'unavailable';
  }
  sessionStorage.setItem(RELOAD_MARK, '1');
  location.reload();
  return 'reloading';
}
