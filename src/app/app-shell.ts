/**
 * The app's shell: a tab per view (live run, trace debugger, stress campaign, migration), the
 * view and its configuration taken from the URL so that a link reproduces what it shows.
 * Loaded by main.ts only once the page is cross-origin isolated (modules below allocate
 * SharedArrayBuffers as they load).
 */
import './app-state.js';
import { el } from './dom.js';
import { configFromQuery } from './live/live-config.js';
import { LiveView } from './live/live-view.js';
import { MigrationView } from './migration/migration-view.js';
import { StressView } from './stress/stress-view.js';
import { TraceView } from './trace/trace-view.js';

interface ViewEntry {
  readonly id: string;
  readonly title: string;
  readonly build: (query: URLSearchParams) => HTMLElement;
}

const VIEWS: readonly ViewEntry[] = [
  {
    id: 'live',
    title: 'Live run',
    build: (q) => {
      const { config, problems } = configFromQuery(q);
      return new LiveView(config, problems).root;
    },
  },
  { id: 'trace', title: 'Trace debugger', build: (q) => new TraceView(q).root },
  { id: 'stress', title: 'Stress campaign', build: (q) => new StressView(configFromQuery(q).config).root },
  { id: 'migration', title: 'Live migration', build: (q) => new MigrationView(configFromQuery(q).config.harvester).root },
];

/** Build the header, the tabs and the view the URL names, inside `host`. */
export function startApp(host: HTMLElement): void {
  const query = new URLSearchParams(location.search);
  const wanted = query.get('view') ?? 'live';
  const tabs = el('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'Views' });
  host.querySelector('header')!.append(tabs);
  const built = new Map<string, HTMLElement>();
  const buttons: HTMLButtonElement[] = [];
  const show = (id: string): void => {
    for (const v of VIEWS) {
      let panel = built.get(v.id);
      if (v.id === id && !panel) {
        panel = v.build(query);
        panel.setAttribute('role', 'tabpanel');
        built.set(v.id, panel);
        host.append(panel);
      }
      if (panel) panel.hidden = v.id !== id;
    }
    for (const b of buttons) b.setAttribute('aria-selected', String(b.dataset['view'] === id));
    const url = new URL(location.href);
    url.searchParams.set('view', id);
    history.replaceState(null, '', url);
  };
  for (const v of VIEWS) {
    const b = el('button', { type: 'button', role: 'tab', id: `tab-${v.id}`, 'data-view': v.id, text: v.title });
    b.addEventListener('click', () => show(v.id));
    b.addEventListener('keydown', (e) => {
      const i = VIEWS.indexOf(v);
      const next = e.key === 'ArrowRight' ? (i + 1) % VIEWS.length : e.key === 'ArrowLeft' ? (i + VIEWS.length - 1) % VIEWS.length : -1;
      if (next >= 0) {
        show(VIEWS[next]!.id);
        buttons[next]!.focus();
      }
    });
    buttons.push(b);
    tabs.append(b);
  }
  show(VIEWS.some((v) => v.id === wanted) ? wanted : 'live');
}

