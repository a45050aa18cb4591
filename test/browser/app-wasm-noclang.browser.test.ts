/**
 * The browser app served from a machine without clang (PATH emptied while the page loads, so the
 * dev server's plugin finds no compiler): no C example is offered, the page says why under the
 * file picker (in the live view and in the stress view), and the built-in harvester still runs.
 */
import { expect, it } from 'vitest';
import { describeApp } from './app-env.js';

describeApp('the browser app without clang', (open) => {
  it('offers no C example, says why, and still runs', async () => {
    const saved = process.env['PATH'];
    process.env['PATH'] = '';
    let tab;
    try {
      tab = await open('?view=live&iterations=2&intervalMs=100&seed=4');
    } finally {
      process.env['PATH'] = saved;
    }
    const offered = await tab.page.$$eval('#cfg-harvester option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered.filter((v) => v.startsWith('c-')), tab.context()).toEqual([]);
    expect(await tab.page.textContent('#harvester-file-note')).toMatch(/^The C examples are not offered: this page was built without clang and wasm-ld/);
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null');
    expect(await tab.page.evaluate(() => (window as unknown as { __dirtyringApp: { live: { summary: { ok: boolean } } } }).__dirtyringApp.live.summary.ok)).toBe(true);
    // The stress view's harvester list is the same list: no C example there either, the same note.
    await tab.page.click('#tab-stress');
    const inStress = await tab.page.$$eval('#st-harvester option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(inStress, tab.context()).toContain('sdk-qemu-reaper');
    expect(inStress.filter((v) => v.startsWith('c-')), tab.context()).toEqual([]);
    expect(await tab.page.textContent('#st-harvester-file-note')).toMatch(/^The C examples are not offered: this page was built without clang and wasm-ld/);
    await tab.finish();
  });
});
