/**
 * The one entry of every browser test page: `page.html?page=NAME&...` loads the page module
 * NAME (a TestPage), runs it, and publishes its outcome on `window.__dirtyringPage` (with
 * `isolated`: SharedArrayBuffer needs a cross-origin isolated page).
 */
import { OUTCOME_GLOBAL, type PageOutcome, type TestPage } from './test-page.js';

const PAGES: Readonly<Record<string, () => Promise<{ page: TestPage }>>> = {
  'ring-run': () => import('./ring-run.js'),
  'track-run': () => import('./track-run.js'),
  migrate: () => import('./migrate.js'),
  'bitmap-simd': () => import('./bitmap-simd.js'),
};

const out = document.getElementById('out')!;
const params = new URLSearchParams(location.search);

function publish(outcome: Omit<PageOutcome, 'isolated'>): void {
  (window as unknown as Record<string, PageOutcome>)[OUTCOME_GLOBAL] = { ...outcome, isolated: crossOriginIsolated };
}

async function main(): Promise<unknown> {
  const name = params.get('page') ?? '';
  const load = PAGES[name];
  if (!load) throw new Error(`no test page "${name}" (known: ${Object.keys(PAGES).join(', ')})`);
  const { page } = await load();
  document.title = `dirtyring: ${page.title}`;
  return page.run(params, (line) => (out.textContent += `\n${line}`));
}

publish({ done: false });
main()
  .then((summary) => {
    out.textContent += `\n${JSON.stringify(summary, null, 2)}`;
    publish({ done: true, summary });
  })
  .catch((e: unknown) => {
    publish({ done: true, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  });
