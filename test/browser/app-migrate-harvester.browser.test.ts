/**
 * The migration view with a user's harvester tracking the dirty pages, in headless Chromium (as
 * `dirtyring migrate --harvester`): the QEMU-style reaper example migrates with the destination
 * identical to the source and its report in the status; the buggy skips-entry example leaves
 * pages that differ at the destination, which the view reports as a failed migration; a shipped
 * C example migrates clean (skipped without clang). Each wait bounded.
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { compileCExamples } from '../../vite-c-harvesters.js';
import { describeApp } from './app-env.js';

interface MigrationProbe {
  migration: { done: boolean; rounds: number; error: string | null; harvester: string | null; mismatchedPages: number | null };
}

const compiled = compileCExamples(fileURLToPath(new URL('../../examples/harvesters-c', import.meta.url)));
const noClang = !compiled.examples.some((e) => e.name === 'qemu-reaper');
if (noClang) console.warn(`[C harvester migration test skipped] ${compiled.note ?? 'qemu-reaper.c did not compile'}`);

const MIGRATION_MS = 120_000;

describeApp('the browser app: migration with a user harvester', (open) => {
  it('migrates with the QEMU-style reaper example: the destination identical, the harvester\u2019s report shown', async () => {
    const tab = await open('?view=migration&harvester=sdk-qemu-reaper');
    expect(await tab.page.inputValue('#mg-harvester')).toBe('sdk-qemu-reaper');
    expect(await tab.page.inputValue('#mg-log')).toBe('ring');
    expect(await tab.page.isDisabled('#mg-log')).toBe(true);
    await tab.page.fill('#mg-memory', '32');
    await tab.page.fill('#mg-seed', '3');
    await tab.page.click('#mg-start');
    await tab.waitFor('app.migration.done', MIGRATION_MS);
    const { migration } = await tab.probe<MigrationProbe>();
    expect(migration.error, tab.context()).toBeNull();
    expect(migration.harvester).toBe('qemu-reaper');
    expect(migration.mismatchedPages).toBe(0);
    expect(await tab.page.textContent('#mg-status')).toMatch(/^Harvester qemu-reaper \(ring mode\): \d+ collections, \d+ pages reported\. (Converged|Did not converge).*identical to the source/);
    await tab.shot('migration-harvester', ['mg-chart']);
    await tab.finish();
  });

  it('reports the pages the buggy skips-entry example lost as a failed migration', async () => {
    const tab = await open('?view=migration');
    await tab.page.selectOption('#mg-harvester', 'sdk-skips-entry');
    await tab.page.fill('#mg-memory', '32');
    await tab.page.fill('#mg-seed', '3');
    await tab.page.click('#mg-start');
    await tab.waitFor('app.migration.done', MIGRATION_MS);
    const { migration } = await tab.probe<MigrationProbe>();
    expect(migration.harvester, tab.context()).toBe('skips-entry');
    expect(migration.mismatchedPages, tab.context()).toBeGreaterThan(0);
    expect(await tab.page.textContent('#mg-alert')).toMatch(/^Migration failed: the migration is not sound: \d+ pages differ at the destination/);
    expect(await tab.page.isEnabled('#mg-start')).toBe(true);
    await tab.finish();
  });

  it.skipIf(noClang)('migrates with a picked qemu-reaper.wasm, the destination identical', async () => {
    const tab = await open('?view=migration');
    const reaper = compiled.examples.find((e) => e.name === 'qemu-reaper')!;
    await tab.page.setInputFiles('#mg-harvester-file', { name: 'qemu-reaper.wasm', mimeType: 'application/wasm', buffer: Buffer.from(reaper.base64, 'base64') });
    await tab.page.waitForSelector('#mg-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    expect(await tab.page.inputValue('#mg-harvester')).toBe('wasm-file');
    await tab.page.fill('#mg-memory', '32');
    await tab.page.click('#mg-start');
    await tab.waitFor('app.migration.done', MIGRATION_MS);
    const { migration } = await tab.probe<MigrationProbe>();
    expect(migration.error, tab.context()).toBeNull();
    expect(migration.harvester).toBe('qemu-reaper');
    expect(migration.mismatchedPages).toBe(0);
    await tab.finish();
  });
});
