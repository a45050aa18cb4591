/**
 * The stress view with a user's harvester in the collector's place, in headless Chromium: a
 * free campaign of the SDK's buggy skips-entry example is caught (forbidden runs, the first
 * one's seed and the CLI line that reruns it), the clean QEMU-style reaper's campaigns (free
 * and controlled) have no forbidden run, the buggy copy-before-reset is caught in controlled
 * runs; with clang: a shipped C example runs clean, relaxed-flags.c is caught under the arm64
 * memory model and not under sc, a picked .wasm runs in every controlled participant; a picked
 * file that is no harvester is named with the loader's reason, the campaign form left usable.
 * Every campaign is at most 100 runs, each wait bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { compileCExamples } from '../../vite-c-harvesters.js';
import { describeApp } from './app-env.js';

interface StressProbe {
  stress: { runs: number; done: boolean; histogram: Record<string, number>; error: string | null; harvester: string | null; firstForbiddenSeed: number | null };
}

const FORBIDDEN = ['lost-page', 'copy-mismatch', 'wrong-value', 'unlogged-write', 'reset-mismatch', 'bad-entry', 'kernel-bug', 'kernel-warning', 'wedged-vcpu', 'deadlock', 'step-limit'];
/** Runs that failed without a finding about the harvester: a harvester a thread could not find would end here. */
const ERRORS = ['harness-error', 'nondeterministic'];
const errorRuns = (h: Record<string, number>): number => ERRORS.reduce((n, k) => n + (h[k] ?? 0), 0);
const forbiddenRuns = (h: Record<string, number>): number => FORBIDDEN.reduce((n, k) => n + (h[k] ?? 0), 0);

const compiled = compileCExamples(fileURLToPath(new URL('../../examples/harvesters-c', import.meta.url)));
const noClang = !compiled.examples.some((e) => e.name === 'selftest-collector');
if (noClang) console.warn(`[C harvester stress test skipped] ${compiled.note ?? 'selftest-collector.c did not compile'}`);

const CAMPAIGN_MS = 180_000;

/** A harvester that passes the load checks and traps in its second collection (null without clang). */
function trappingModule(): Buffer | null {
  if (noClang) return null;
  const dir = mkdtempSync(join(tmpdir(), 'dirtyring-stress-trap-'));
  try {
    writeFileSync(join(dir, 'traps.c'), '#include "dirtyring.h"\nDIRTYRING_HARVESTER(DIRTYRING_LOG_RING)\nstatic int calls;\nint dirtyring_collect(int final) { (void)final; if (++calls == 2) __builtin_trap(); return 0; }\n');
    const built = compileCExamples(dir).examples[0];
    return built === undefined ? null : Buffer.from(built.base64, 'base64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describeApp('the browser app: stress campaigns of a user harvester', (open) => {
  it('catches the buggy skips-entry example in a free campaign, with the seed and the rerun line', async () => {
    const tab = await open('?view=stress&seed=5');
    await tab.page.selectOption('#st-harvester', 'sdk-skips-entry');
    // The harvester drives its own log mode; a mutant campaign is the built-in collectors'.
    expect(await tab.page.inputValue('#st-log')).toBe('ring');
    expect(await tab.page.isDisabled('#st-log')).toBe(true);
    expect(await tab.page.isDisabled('#st-mutant')).toBe(true);
    await tab.page.selectOption('#st-mode', 'free');
    await tab.page.fill('#st-runs', '3');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBe('skips-entry');
    expect(stress.runs).toBe(3);
    expect(forbiddenRuns(stress.histogram), JSON.stringify(stress.histogram)).toBeGreaterThan(0);
    const status = await tab.page.textContent('#st-status');
    expect(status).toMatch(/^3 free runs of harvester skips-entry \(ring mode\) on real worker threads in [\d.]+ s: [1-3] forbidden\. First forbidden run: seed \d+ \(ring\/user:skips-entry\.ts /);
    expect(await tab.page.textContent('#st-rerun')).toBe(`Rerun the first forbidden run in Node: npx dirtyring stress --mode free --harvester examples/harvesters/skips-entry.ts --seed ${stress.firstForbiddenSeed} --runs 1`);
    const colours = await tab.shot('stress-harvester-caught', ['histogram']);
    expect(colours['histogram']).toBeGreaterThan(2);
    await tab.finish();
  });

  it('catches the buggy copy-before-reset example in a controlled campaign (its harvester runs in the userspace participant)', async () => {
    const tab = await open('?view=stress&harvester=sdk-copy-before-reset&seed=1');
    await tab.page.fill('#st-runs', '40');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBe('copy-before-reset');
    expect(errorRuns(stress.histogram), JSON.stringify(stress.histogram)).toBe(0);
    expect(forbiddenRuns(stress.histogram), JSON.stringify(stress.histogram)).toBeGreaterThan(0);
    expect(await tab.page.textContent('#st-status')).toMatch(/First forbidden run: seed \d+ \(ring\/user:copy-before-reset\.ts /);
    expect(await tab.page.textContent('#st-rerun')).toBe(`Rerun the first forbidden run in Node: npx dirtyring stress --mode controlled --harvester examples/harvesters/copy-before-reset.ts --seed ${stress.firstForbiddenSeed} --runs 1`);
    await tab.finish();
  });

  it.each([
    ['free', '3'],
    ['controlled', '40'],
  ])('runs the QEMU-style reaper example clean in a %s campaign', async (mode, runs) => {
    const tab = await open('?view=stress&harvester=sdk-qemu-reaper&seed=7');
    expect(await tab.page.inputValue('#st-harvester')).toBe('sdk-qemu-reaper');
    await tab.page.selectOption('#st-mode', mode);
    await tab.page.fill('#st-runs', runs);
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBe('qemu-reaper');
    expect(stress.runs).toBe(Number(runs));
    expect(Object.values(stress.histogram).reduce((a, b) => a + b, 0), 'each run counted once').toBe(Number(runs));
    expect(forbiddenRuns(stress.histogram) + errorRuns(stress.histogram), JSON.stringify(stress.histogram)).toBe(0);
    expect(await tab.page.textContent('#st-status')).toContain('runs of harvester qemu-reaper (ring mode)');
    expect(await tab.page.isHidden('#st-rerun')).toBe(true);
    if (mode === 'controlled') await tab.shot('stress-harvester-clean', ['histogram']);
    await tab.finish();
  });

  it.skipIf(noClang)('runs a shipped C example (the selftest collector) in controlled and free campaigns', async () => {
    const tab = await open('?view=stress&harvester=c-selftest-collector&seed=2');
    for (const [mode, runs] of [['controlled', 20], ['free', 2]] as const) {
      await tab.page.selectOption('#st-mode', mode);
      await tab.page.fill('#st-runs', String(runs));
      await tab.page.click('#st-start');
      await tab.waitFor('app.stress.done', CAMPAIGN_MS);
      const { stress } = await tab.probe<StressProbe>();
      expect(stress.error, tab.context()).toBeNull();
      expect(stress.harvester).toBe('selftest-collector');
      expect(stress.runs).toBe(runs);
      expect(forbiddenRuns(stress.histogram) + errorRuns(stress.histogram), `${mode}: ${JSON.stringify(stress.histogram)}`).toBe(0);
      await tab.page.evaluate(() => {
        (window as unknown as { __dirtyringApp: { stress: { done: boolean } } }).__dirtyringApp.stress.done = false;
      });
    }
    await tab.finish();
  });

  it.skipIf(noClang)('catches the relaxed-flags C example under the arm64 memory model, and not under sc', async () => {
    const tab = await open('?view=stress&harvester=c-relaxed-flags&seed=1');
    await tab.page.fill('#st-runs', '100');
    for (const model of ['sc', 'arm64'] as const) {
      await tab.page.selectOption('#st-wmm', model);
      await tab.page.click('#st-start');
      await tab.waitFor('app.stress.done', CAMPAIGN_MS);
      const { stress } = await tab.probe<StressProbe>();
      expect(stress.error, tab.context()).toBeNull();
      expect(errorRuns(stress.histogram), JSON.stringify(stress.histogram)).toBe(0);
      if (model === 'sc') expect(forbiddenRuns(stress.histogram), `sc: ${JSON.stringify(stress.histogram)}`).toBe(0);
      else expect(forbiddenRuns(stress.histogram), `arm64: ${JSON.stringify(stress.histogram)}`).toBeGreaterThan(0);
      await tab.page.evaluate(() => {
        (window as unknown as { __dirtyringApp: { stress: { done: boolean } } }).__dirtyringApp.stress.done = false;
      });
    }
    expect(await tab.page.textContent('#st-status')).toMatch(/^100 controlled runs of harvester relaxed-flags \(ring mode\) under the arm64 memory model/);
    expect(await tab.page.textContent('#st-rerun')).toMatch(/^Rerun the first forbidden run in Node: npx dirtyring build-harvester examples\/harvesters-c\/relaxed-flags\.c && npx dirtyring stress --mode controlled --harvester examples\/harvesters-c\/relaxed-flags\.wasm --memory-model arm64 --seed \d+ --runs 1$/);
    await tab.shot('stress-c-harvester-arm64', ['histogram']);
    await tab.finish();
  });

  it.skipIf(noClang)('runs a picked qemu-reaper.wasm clean in a controlled campaign (each participant compiles the picked bytes)', async () => {
    const tab = await open('?view=stress&seed=4');
    const reaper = compiled.examples.find((e) => e.name === 'qemu-reaper')!;
    await tab.page.setInputFiles('#st-harvester-file', { name: 'my-reaper.wasm', mimeType: 'application/wasm', buffer: Buffer.from(reaper.base64, 'base64') });
    await tab.page.waitForSelector('#st-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    expect(await tab.page.inputValue('#st-harvester')).toBe('wasm-file');
    expect(await tab.page.inputValue('#st-log')).toBe('ring');
    await tab.page.fill('#st-runs', '30');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBe('my-reaper');
    expect(stress.runs).toBe(30);
    expect(forbiddenRuns(stress.histogram) + errorRuns(stress.histogram), JSON.stringify(stress.histogram)).toBe(0);
    await tab.finish();
  });

  it.skipIf(noClang)('counts the runs of a picked module that traps as failed, not as clean', async () => {
    const tab = await open('?view=stress&seed=3');
    await tab.page.setInputFiles('#st-harvester-file', { name: 'traps.wasm', mimeType: 'application/wasm', buffer: trappingModule()! });
    await tab.page.waitForSelector('#st-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    await tab.page.selectOption('#st-mode', 'free');
    await tab.page.fill('#st-runs', '2');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBe('traps');
    expect((stress.histogram['clean'] ?? 0), JSON.stringify(stress.histogram)).toBe(0);
    expect(errorRuns(stress.histogram), JSON.stringify(stress.histogram)).toBe(2);
    expect(await tab.page.textContent('#st-status')).toMatch(/^2 free runs of harvester traps \(ring mode\) on real worker threads in [\d.]+ s: 0 forbidden, 2 failed with an error \(purple bars\)\. First failed run: seed 3 .*unreachable/is);
    expect(await tab.page.textContent('#st-rerun')).toBe('Rerun the first failed run in Node: npx dirtyring stress --mode free --harvester traps.wasm --seed 3 --runs 1');
    await tab.shot('stress-c-harvester-trap', ['histogram']);
    // The runs' own reports of the trap are the only console errors.
    tab.log.errors.splice(0, tab.log.errors.length, ...tab.log.errors.filter((e) => !/unreachable/i.test(e)));
    await tab.finish();
  });

  it('names a picked file that is no harvester; the built-in collectors stay chosen and run', async () => {
    const tab = await open('?view=stress');
    await tab.page.setInputFiles('#st-harvester-file', { name: 'empty.wasm', mimeType: 'application/wasm', buffer: Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) });
    await tab.page.waitForSelector('#st-harvester-file-note.error', { timeout: 10_000 });
    expect(await tab.page.textContent('#st-harvester-file-note')).toMatch(/^Cannot use empty\.wasm: harvester file empty\.wasm: EINVAL, exports no function dirtyring_log/);
    expect(await tab.page.inputValue('#st-harvester')).toBe('builtin');
    expect(await tab.page.locator('#st-harvester option[value="wasm-file"]').count()).toBe(0);
    await tab.page.fill('#st-runs', '10');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', CAMPAIGN_MS);
    const { stress } = await tab.probe<StressProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.harvester).toBeNull();
    expect(stress.runs).toBe(10);
    await tab.finish();
  });
});
