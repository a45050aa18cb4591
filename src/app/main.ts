/**
 * The browser app's entry: the header, then cross-origin isolation (SharedArrayBuffer needs it;
 * on a host without the headers the service worker supplies them after one reload), then the
 * app itself — loaded only now, because its modules allocate shared memory as they load.
 */
import './app.css';
import { el } from './dom.js';
import { ensureIsolation } from './isolation.js';

function notIsolated(): HTMLElement {
  return el(
    'div',
    { class: 'alert', role: 'alert' },
    'This page is not cross-origin isolated, so SharedArrayBuffer is unavailable and no run can start. ',
    'Serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp ',
    '(npm run dev and npm run preview do), or over HTTPS (or localhost) where the app\u2019s service worker can add them (see the README).',
  );
}

async function main(): Promise<void> {
  const host = document.getElementById('app')!;
  host.append(el('header', {}, el('h1', {}, 'dirtyring ', el('small', { text: 'KVM dirty-page tracking, live' }))));
  if (!crossOriginIsolated) {
    if ((await ensureIsolation(new URL('.', location.href).pathname)) === 'reloading') return;
    host.append(notIsolated());
    return;
  }
  const { startApp } = await import('./app-shell.js');
  startApp(host);
}

void main();
