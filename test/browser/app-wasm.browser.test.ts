/**
 * C harvesters in the browser app's live run: a module picked as a file (built here with the
 * clang line of `dirtyring build-harvester`) and the shipped examples the dev server compiled
 * run clean with their rings in the module's shared memory; a file that is no module, or a
 * module that is no harvester, is named in the page with the loader's reason, and the page
 * stays usable. Skipped without clang and wasm-ld (the page then says why the examples are missing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { compileCExamples } from '../../vite-c-harvesters.js';
import { describeApp } from './app-env.js';

interface LiveProbe {
  live: {
    state: string;
    iteration: number;
    summary: { ok: boolean; lostPages: number; iterations: number; error: string | null } | null;
    ringMemoryPages: number;
    rings: { dirty: number; reset: number; fetch: number; fetchFromFlags: boolean }[];
  };
}

const compiled = compileCExamples(fileURLToPath(new URL('../../examples/harvesters-c', import.meta.url)));
const reaper = compiled.examples.find((e) => e.name === 'qemu-reaper');
const noClang = reaper === undefined;

/** A harvester that passes the load checks and traps in its third collection. */
function trappingModule(): Buffer | null {
  if (noClang) return null;
  const dir = mkdtempSync(join(tmpdir(), 'dirtyring-trap-'));
  try {
    writeFileSync(join(dir, 'traps.c'), '#include "dirtyring.h"\nDIRTYRING_HARVESTER(DIRTYRING_LOG_RING)\nstatic int calls;\nint dirtyring_collect(int final) { (void)final; if (++calls == 3) __builtin_trap(); return 0; }\n');
    const built = compileCExamples(dir).examples[0];
    return built === undefined ? null : Buffer.from(built.base64, 'base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (noClang) console.warn(`[C harvester browser tests skipped] ${compiled.note ?? 'qemu-reaper.c did not compile'}`);

describeApp('the browser app: C harvesters', (open) => {
  it.skipIf(noClang)('runs a picked qemu-reaper.wasm clean, its rings in the module\u2019s memory', async () => {
    const tab = await open('?view=live&log=ring&vcpus=4&memoryMiB=32&ringEntries=512&workload=hotset&iterations=6&intervalMs=400&seed=11');
    await tab.page.setInputFiles('#cfg-harvester-file', { name: 'qemu-reaper.wasm', mimeType: 'application/wasm', buffer: Buffer.from(reaper!.base64, 'base64') });
    await tab.page.waitForSelector('#cfg-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    expect(await tab.page.inputValue('#cfg-harvester')).toBe('wasm-file');
    expect(await tab.page.textContent('#harvester-file-note')).toContain('qemu-reaper.wasm: a ring-mode harvester');
    await tab.page.selectOption('#cfg-speed', '1');
    await tab.page.click('#btn-start');
    await tab.waitFor("app.live.iteration >= 2 && app.live.state === 'running' && app.live.heat.written > 0");
    const counts = await tab.shot('live-c-harvester', ['lanes', 'rings', 'heatmap']);
    expect(counts['rings'], tab.context()).toBeGreaterThan(3);
    // The module keeps its fetch index to itself: each strip shows the position its RESET flags
    // give, which lies between reset_index and dirty_index and has moved past 0 once harvested.
    const { rings } = (await tab.probe<LiveProbe>()).live;
    expect(rings.length, tab.context()).toBe(4);
    for (const r of rings) {
      expect(r.fetchFromFlags).toBe(true);
      expect(r.fetch - r.reset, JSON.stringify(r)).toBeGreaterThanOrEqual(0);
      expect(r.dirty - r.fetch, JSON.stringify(r)).toBeGreaterThanOrEqual(0);
    }
    expect(rings.some((r) => r.fetch > 0), JSON.stringify(rings)).toBe(true);
    await tab.page.selectOption('#cfg-speed', '0');
    await tab.waitFor('app.live.summary !== null');
    expect((await tab.probe<LiveProbe>()).live.summary, tab.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 6, error: null });
    // The page draws the rings from where the C code reads them: the module's shared memory,
    // its own pages and then 4 rings of 512 entries × 16 B (2 pages of 64 KiB).
    expect((await tab.probe<LiveProbe>()).live.ringMemoryPages, tab.context()).toBeGreaterThan(2);
    await tab.finish();
  });

  it.skipIf(noClang)('offers the shipped C examples, compiled by the dev server; the selftest collector runs clean', async () => {
    const tab = await open('?view=live&log=ring&harvester=c-selftest-collector&iterations=4&intervalMs=150&seed=3');
    const offered = await tab.page.$$eval('#cfg-harvester option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(offered).toEqual(expect.arrayContaining(['c-qemu-reaper', 'c-selftest-collector', 'c-relaxed-flags', 'c-plain-reset']));
    expect(await tab.page.inputValue('#cfg-harvester')).toBe('c-selftest-collector');
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null');
    expect((await tab.probe<LiveProbe>()).live.summary, tab.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 4, error: null });
    await tab.finish();
  });

  it('names a file that is no module, and one that is no harvester; the page stays usable', async () => {
    const tab = await open('?view=live&iterations=2&intervalMs=100&seed=2');
    await tab.page.setInputFiles('#cfg-harvester-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a module\n') });
    await tab.page.waitForSelector('#harvester-file-note.error', { timeout: 10_000 });
    expect(await tab.page.textContent('#harvester-file-note')).toBe('Cannot use notes.txt: harvester file notes.txt: EINVAL, not a WebAssembly module (no \\0asm header)');
    // An empty but valid module: the loader's missing-export reason.
    await tab.page.setInputFiles('#cfg-harvester-file', { name: 'empty.wasm', mimeType: 'application/wasm', buffer: Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) });
    await tab.page.waitForFunction(() => document.getElementById('harvester-file-note')?.textContent?.includes('empty.wasm'), undefined, { timeout: 10_000 });
    expect(await tab.page.textContent('#harvester-file-note')).toMatch(/^Cannot use empty\.wasm: harvester file empty\.wasm: EINVAL, exports no function dirtyring_log/);
    expect(await tab.page.locator('#cfg-harvester option[value="wasm-file"]').count()).toBe(0);
    expect(await tab.page.inputValue('#cfg-harvester')).toBe('builtin');
    // The picker has its label and is reached by keyboard.
    expect(await tab.page.evaluate(() => (document.getElementById('cfg-harvester-file') as HTMLInputElement).labels?.[0]?.textContent)).toBe('C harvester file (.wasm)');
    await tab.page.focus('#cfg-wmm');
    await tab.page.keyboard.press('Tab');
    expect(await tab.page.evaluate(() => document.activeElement?.id)).toBe('cfg-harvester-file');
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null');
    expect((await tab.probe<LiveProbe>()).live.summary, tab.context()).toMatchObject({ ok: true, iterations: 2 });
    await tab.finish();
  });

  it.skipIf(noClang)('a module that traps during the run fails it with the trap and the seed; the page stays usable', async () => {
    const tab = await open('?view=live&log=ring&iterations=4&intervalMs=100&seed=9');
    await tab.page.setInputFiles('#cfg-harvester-file', { name: 'traps.wasm', mimeType: 'application/wasm', buffer: trappingModule()! });
    await tab.page.waitForSelector('#cfg-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null');
    const { summary } = (await tab.probe<LiveProbe>()).live;
    expect(summary?.ok, tab.context()).toBe(false);
    expect(summary?.error, tab.context()).toMatch(/traps.*unreachable/is);
    expect(await tab.page.textContent('#live-status')).toMatch(/seed 9/);
    expect(await tab.page.isEnabled('#btn-start')).toBe(true);
    // Console errors here are the run's own report of the trap, nothing else.
    tab.log.errors.splice(0, tab.log.errors.length, ...tab.log.errors.filter((e) => !/unreachable/i.test(e)));
    await tab.finish();
  });

  it('refuses to start the picked-file harvester from a link when no file was picked', async () => {
    const tab = await open('?view=live&harvester=wasm-file&iterations=2');
    expect(await tab.page.inputValue('#cfg-harvester')).toBe('wasm-file');
    await tab.page.click('#btn-start');
    await tab.page.waitForSelector('#live-alert:not([hidden])', { timeout: 15_000 });
    expect(await tab.page.textContent('#live-alert')).toContain('no .wasm file chosen');
    expect(await tab.page.isEnabled('#btn-start')).toBe(true);
    await tab.finish();
  });
});
