/* global fetch, Headers, Response */
/*
 * dirtyring's cross-origin isolation service worker, for hosts that cannot send headers (static
 * file hosting). SharedArrayBuffer needs a cross-origin isolated page, which takes two response
 * headers: Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy:
 * require-corp. This worker adds them to every response it passes on; the page registers it
 * and reloads once, and from then on the page and its workers load through it.
 */
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  // Same-origin resources need nothing more; this lets the page embed what the worker fetched.
  'Cross-Origin-Resource-Policy': 'same-origin',
};

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  // A request the browser would refuse to make this way (a cache-only cross-origin one) is left alone.
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  if (new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(
    fetch(request).then((response) => {
      // Opaque and error responses cannot be rebuilt; pass them on as they are.
      if (response.status === 0 || response.type === 'opaque') return response;
      const headers = new Headers(response.headers);
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
    }),
  );
});
