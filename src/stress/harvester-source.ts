/**
 * Where a campaign's threads find the user's harvester its spec names by URL. In Node the URL
 * is a module file and each thread loads it (load-harvester.ts). The browser app has no files:
 * its threads are given a provider, which maps the app's harvester URLs (appHarvesterUrl) to
 * definitions the page bundled or a module the user picked. A URL the provider does not know
 * goes to the file loader, so Node's behaviour is unchanged.
 */
import type { HarvesterDefinition } from '../harvester/contract.js';
import { harvesterRingSpace, loadHarvester, loadedHarvester } from '../harvester/load-harvester.js';

/** A definition for `url`, or null when this provider does not know it. */
export type HarvesterProvider = (url: string) => HarvesterDefinition | null;

let provider: HarvesterProvider | null = null;

/** Set this thread's provider (the browser app's workers; null: files only). */
export function provideHarvesters(p: HarvesterProvider | null): void {
  provider = p;
}

/**
 * The URL of one of the app's harvesters, by its choice id: a file: URL (the scenario checks
 * require one) under a directory no file system has, ending in `fileName`, the module's name
 * a run's description shows (`ring/user:skips-entry.ts ...`), as the CLI shows a file's.
 */
export function appHarvesterUrl(id: string, fileName: string): string {
  return `file:///dirtyring-app/harvesters/${encodeURIComponent(id)}/${encodeURIComponent(fileName)}`;
}

/** The choice id an app harvester URL names, or null for any other URL. */
export function appHarvesterId(url: string): string | null {
  const m = /^file:\/\/\/dirtyring-app\/harvesters\/([^/]+)\/[^/]+$/.exec(url);
  return m ? decodeURIComponent(m[1]!) : null;
}

/** The harvester at `url` (loaded once per thread when it is a file). */
export async function harvesterAt(url: string): Promise<HarvesterDefinition> {
  return provider?.(url) ?? (await loadHarvester(url)).definition;
}

/** The harvester at `url`, which this thread has loaded (or its provider knows). */
export function loadedHarvesterAt(url: string): HarvesterDefinition {
  return provider?.(url) ?? loadedHarvester(url);
}

/** Where the rings of a run of the harvester at `url` go (undefined: the kernel's own memory). */
export function ringSpaceAt(url: string): HarvesterDefinition['ringSpace'] {
  const d = provider?.(url);
  return d ? d.ringSpace : harvesterRingSpace(url);
}
