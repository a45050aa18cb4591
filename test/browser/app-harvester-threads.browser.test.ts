/**
 * Harvesters on threads of their own in the page, in headless Chromium: the threaded examples
 * are offered with their thread count; per-vcpu-threads (TypeScript, and the C one with clang)
 * runs clean on its two harvester-thread workers in the live run, in free and controlled
 * stress campaigns and in a migration, and as a picked .wasm (each thread compiles the picked
 * bytes); the plain flag hand-off (flag-handoff-reset) is caught in a controlled
 * campaign under the arm64 memory model, its threads the participants H0 and H1. Every
 * campaign is small (failing threaded controlled runs are slow), every wait bounded.
 */
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { compileCExamples } from '../../vite-c-harvesters.js';
import { describeApp } from './app-env.js';

interface LiveProbe {
  live: { state: string; iteration: number; harvesterThreads: number; summary: { ok: boolean; lostPages: number; iterations: number; error: string | null } | null };
}

interface MigrationProbe {
  migration: { done: boolean; rounds: number; error: string | null; harvester: string | null; mismatchedPages: number | null };
}

interface StressProbe {
  stress: { runs: number; done: boolean; histogram: Record<string, number>; error: string | null; harvester: string | null; firstForbiddenSeed: number | null; harvesterThreadWorkers: number };
}

const FORBIDDEN = ['lost-page', 'copy-mismatch', 'wrong-value', 'unlogged-write', 'reset-mismatch', 'bad-entry', 'kernel-bug', 'kernel-warning', 'wedged-vcpu', 'deadlock', 'step-limit'];
const ERRORS = ['harness-error', 'nondeterministic'];
const count = (h: Record<string, number>, kinds: readonly string[]): number => kinds.reduce((n, k) => n + (h[k] ?? 0), 0);

const compiled = compileCExamples(fileURLToPath(new URL('../../examples/harvesters-c', import.meta.url)));
const noClang = !compiled.examples.some((e) => e.name === 'per-vcpu-threads');
if (noClang) console.warn(`[C threaded harvester browser tests skipped] ${compiled.note ?? 'per-vcpu-threads.c did not compile'}`);

const CAMPAIGN_MS = 180_000;

async function campaign(tab: Awaited<ReturnType<Parameters<Parameters<typeof describeApp>[1]>[0]>>, mode: string, runs: number): Promise<StressProbe['stress']> {
  await tab.page.evaluate(() => {
    (window as unknown as { __dirtyringApp: { stress: { done: boolean } } }).__dirtyringApp.stress.done = false;
  });
  await tab.page.selectOption('#st-mode', mode);
  await tab.page.fill('#st-runs', String(runs));
  await tab.page.click('#st-start');
  await tab.waitFor('app.stress.done', CAMPAIGN_MS);
  return (await tab.probe<StressProbe>()).stress;
}

describeApp('the browser app: harvesters on threads of their own', (open) => {
  it('offers the threaded examples with their thread count', async () => {
    const tab = await open('?view=live');
    const labels = await tab.page.$$eval('#cfg-harvester option', (os) => os.map((o) => `${(o as HTMLOptionElement).value}=${o.textContent}`));
    expect(labels).toEqual(expect.arrayContaining(['sdk-per-vcpu-threads=SDK example: per-vCPU reaper threads (ring mode, 2 threads)', 'sdk-flag-handoff-reset=SDK example: flag hand-off to the resetting thread (buggy, arm64 only) (ring mode, 2 threads)']));
    if (!noClang) expect(labels).toEqual(expect.arrayContaining(['c-per-vcpu-threads=C example: per-vCPU reaper threads (WebAssembly, 2 threads)', 'c-flag-handoff-reset=C example: flag hand-off to the resetting thread (buggy, arm64 only) (WebAssembly, 2 threads)']));
    await tab.page.click('nav.tabs >> text=Stress');
    const stressIds = await tab.page.$$eval('#st-harvester option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(stressIds).toEqual(expect.arrayContaining(['sdk-per-vcpu-threads', 'sdk-flag-handoff-reset', 'sdk-flag-handoff-reset-release', 'sdk-second-thread-reset']));
    await tab.finish();
  });

  for (const id of ['sdk-per-vcpu-threads', 'c-per-vcpu-threads']) it.skipIf(id.startsWith('c-') && noClang)(`runs ${id} clean in the live run, on its two threads`, async () => {
    const tab = await open(`?view=live&log=ring&vcpus=4&memoryMiB=32&ringEntries=512&workload=hotset&iterations=6&intervalMs=300&seed=11&harvester=${id}`);
    expect(await tab.page.inputValue('#cfg-harvester')).toBe(id);
    await tab.page.selectOption('#cfg-speed', '1');
    await tab.page.click('#btn-start');
    await tab.waitFor("app.live.iteration >= 2 && app.live.state === 'running' && app.live.heat.written > 0");
    // Its two threads are harvester-thread workers: a collection ends only when both are done.
    expect((await tab.probe<LiveProbe>()).live.harvesterThreads, tab.context()).toBe(2);
    expect(await tab.page.textContent('#lanes-note')).toContain('The harvester runs on 2 threads of its own (Web Workers)');
    await tab.shot(`live-${id}`, ['lanes', 'rings']);
    await tab.page.selectOption('#cfg-speed', '0');
    await tab.waitFor('app.live.summary !== null', 120_000);
    expect((await tab.probe<LiveProbe>()).live.summary, tab.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 6, error: null });
    await tab.finish();
  });

  for (const id of ['sdk-per-vcpu-threads', 'c-per-vcpu-threads']) it.skipIf(id.startsWith('c-') && noClang)(`runs ${id} clean in free and controlled stress campaigns`, async () => {
    const tab = await open(`?view=stress&harvester=${id}&seed=4`);
    for (const [mode, runs] of [['free', 2], ['controlled', 6]] as const) {
      const stress = await campaign(tab, mode, runs);
      expect(stress.error, tab.context()).toBeNull();
      expect(stress.harvester).toBe('per-vcpu-threads');
      expect(stress.runs).toBe(runs);
      expect(count(stress.histogram, FORBIDDEN) + count(stress.histogram, ERRORS), `${mode}: ${JSON.stringify(stress.histogram)}\n${tab.context()}`).toBe(0);
      // Free runs: two harvester-thread workers per run; controlled runs: the threads are participants.
      expect(stress.harvesterThreadWorkers, mode).toBe(mode === 'free' ? 2 * runs : 0);
      expect(await tab.page.textContent('#st-status')).toContain(`runs of harvester per-vcpu-threads (ring mode, 2 threads of its own${mode === 'controlled' ? ' (participants H0, H1…)' : ''})`);
    }
    await tab.finish();
  });

  for (const [id, ext] of [['sdk-flag-handoff-reset', 'ts'], ['c-flag-handoff-reset', 'wasm']] as const) it.skipIf(id.startsWith('c-') && noClang)(`catches the plain flag hand-off (${id}) in a controlled arm64 campaign, its threads participants H0 and H1`, async () => {
    const tab = await open(`?view=stress&harvester=${id}&seed=1`);
    await tab.page.selectOption('#st-wmm', 'arm64');
    const stress = await campaign(tab, 'controlled', 6);
    expect(stress.error, tab.context()).toBeNull();
    expect(count(stress.histogram, ERRORS), JSON.stringify(stress.histogram)).toBe(0);
    expect(count(stress.histogram, FORBIDDEN), JSON.stringify(stress.histogram)).toBeGreaterThan(0);
    // The run's description names the harvester's threads: user:NAME×2.
    expect(await tab.page.textContent('#st-status')).toMatch(new RegExp(`First forbidden run: seed \\d+ \\(ring/user:flag-handoff-reset\\.${ext}×2 `));
    await tab.shot(`stress-threaded-${id}-caught`, ['histogram']);
    await tab.finish();
  });

  it('migrates with per-vcpu-threads on its two threads: the destination identical to the source', async () => {
    const tab = await open('?view=migration&harvester=sdk-per-vcpu-threads');
    expect(await tab.page.inputValue('#mg-harvester')).toBe('sdk-per-vcpu-threads');
    await tab.page.fill('#mg-memory', '32');
    await tab.page.fill('#mg-seed', '3');
    await tab.page.click('#mg-start');
    await tab.waitFor('app.migration.done', CAMPAIGN_MS);
    const { migration } = await tab.probe<MigrationProbe>();
    expect(migration.error, tab.context()).toBeNull();
    expect(migration.harvester).toBe('per-vcpu-threads');
    expect(migration.mismatchedPages).toBe(0);
    expect(await tab.page.textContent('#mg-status')).toMatch(/^Harvester per-vcpu-threads \(ring mode, 2 threads of its own\): \d+ collections, [1-9]\d* pages reported\. (Converged|Did not converge).*identical to the source/);
    await tab.finish();
  });

  it.skipIf(noClang)('runs a picked per-vcpu-threads.wasm on its two threads: each thread is sent the file and compiles it', async () => {
    const perVcpu = compiled.examples.find((e) => e.name === 'per-vcpu-threads')!;
    const tab = await open('?view=live&log=ring&vcpus=4&memoryMiB=32&ringEntries=512&workload=hotset&iterations=4&intervalMs=200&seed=5');
    await tab.page.setInputFiles('#cfg-harvester-file', { name: 'per-vcpu-threads.wasm', mimeType: 'application/wasm', buffer: Buffer.from(perVcpu.base64, 'base64') });
    await tab.page.waitForSelector('#cfg-harvester option[value="wasm-file"]', { state: 'attached', timeout: 10_000 });
    expect(await tab.page.textContent('#cfg-harvester option[value="wasm-file"]')).toBe('C harvester: per-vcpu-threads.wasm (ring mode, 2 threads)');
    expect(await tab.page.textContent('#harvester-file-note')).toContain('per-vcpu-threads.wasm: a ring-mode harvester on 2 threads of its own');
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null', 120_000);
    const { live } = await tab.probe<LiveProbe>();
    expect(live.harvesterThreads, tab.context()).toBe(2);
    expect(live.summary, tab.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 4, error: null });
    await tab.finish();
  });
});
