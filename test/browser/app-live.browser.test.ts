/**
 * The app's live run view in headless Chromium: it loads clean with labelled, keyboard-operable
 * controls; a run starts, progresses, pauses, steps and finishes clean; a mutant run pauses
 * itself on the first lost page with the oracle's finding; each view's screenshot has content.
 */
import { expect, it } from 'vitest';
import { describeApp } from './app-env.js';

interface LiveProbe {
  live: { state: string; iteration: number; lostMessage: string | null; summary: { ok: boolean; lostPages: number; iterations: number; error: string | null } | null; heat: Record<string, number>; frames: number };
}

describeApp('the browser app: live run', (open) => {
  it('loads with no console error, and every control has a label and is reachable by keyboard', async () => {
    const tab = await open();
    const unlabelled = await tab.page.evaluate(() =>
      [...document.querySelectorAll('input, select')].filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.id),
    );
    expect(unlabelled, tab.context()).toEqual([]);
    for (const id of ['cfg-log', 'cfg-vcpus', 'cfg-memory', 'cfg-ring', 'cfg-workload', 'cfg-devices', 'cfg-mutant', 'cfg-seed', 'cfg-harvester', 'cfg-wmm', 'btn-start', 'btn-pause', 'btn-step', 'btn-stop', 'repro-link']) {
      expect(await tab.page.locator(`#${id}`).count(), id).toBe(1);
    }
    // Keyboard only: focus the Start button by tabbing, press Enter, and the run starts.
    await tab.page.fill('#cfg-iterations', '3');
    await tab.page.fill('#cfg-interval', '50');
    await tab.page.dispatchEvent('#cfg-interval', 'change');
    let focused = '';
    for (let i = 0; i < 40 && focused !== 'btn-start'; i++) {
      await tab.page.keyboard.press('Tab');
      focused = await tab.page.evaluate(() => document.activeElement?.id ?? '');
    }
    expect(focused, tab.context()).toBe('btn-start');
    await tab.page.keyboard.press('Enter');
    await tab.waitFor("app.live.summary !== null");
    const p = await tab.probe<LiveProbe>();
    expect(p.live.summary?.ok, tab.context()).toBe(true);
    expect(await tab.page.getAttribute('#repro-link', 'href'), tab.context()).toContain('iterations=3');
    await tab.finish();
  });

  it('runs, progresses, pauses, steps one iteration and finishes clean; the link reproduces the configuration', async () => {
    const tab = await open('?view=live&vcpus=4&memoryMiB=32&ringEntries=512&workload=hotset&iterations=8&intervalMs=400&seed=11');
    expect(await tab.page.inputValue('#cfg-seed')).toBe('11');
    // Half speed leaves time between iterations to take the screenshot and pause.
    await tab.page.selectOption('#cfg-speed', '1');
    await tab.page.click('#btn-start');
    // Inside an iteration (between iterations every page is protected: one colour).
    await tab.waitFor("app.live.iteration >= 2 && app.live.state === 'running' && app.live.heat.written > 0");
    const counts = await tab.shot('live', ['lanes', 'rings', 'heatmap']);
    // Non-blank: the lanes and strips show several states, the heatmap at least two page states.
    expect(counts['lanes'], tab.context()).toBeGreaterThan(3);
    expect(counts['rings'], tab.context()).toBeGreaterThan(3);
    expect(counts['heatmap'], tab.context()).toBeGreaterThanOrEqual(2);
    // The built-in collector tells its fetch index: the strips show it, not a derived position.
    expect(await tab.page.evaluate(() => (window as unknown as { __dirtyringApp: { live: { rings: { fetchFromFlags: boolean }[] } } }).__dirtyringApp.live.rings.map((r) => r.fetchFromFlags))).toEqual([false, false, false, false]);
    await tab.page.click('#btn-pause');
    await tab.waitFor("app.live.state === 'paused'");
    const at = (await tab.probe<LiveProbe>()).live.iteration;
    await tab.page.waitForTimeout(400);
    expect((await tab.probe<LiveProbe>()).live.iteration, 'paused: no iteration runs').toBe(at);
    await tab.page.click('#btn-step');
    await tab.waitFor(`app.live.iteration === ${at + 1} && app.live.state === 'paused'`);
    await tab.page.waitForTimeout(300);
    expect((await tab.probe<LiveProbe>()).live.iteration, 'a step runs exactly one iteration').toBe(at + 1);
    await tab.page.selectOption('#cfg-speed', '0');
    await tab.page.click('#btn-pause'); // resume
    await tab.waitFor("app.live.summary !== null");
    const { live } = await tab.probe<LiveProbe>();
    expect(live.summary, tab.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 8, error: null });
    expect(live.state).toBe('finished');
    expect(await tab.page.textContent('#live-status')).toContain('finished clean');
    await tab.finish();
  });

  it('pauses itself on the first lost page of a mutant run, flashes it, and shows the finding', async () => {
    const tab = await open('?view=live&mutant=harvest-skips-entry&iterations=6&intervalMs=150&seed=5');
    await tab.page.click('#btn-start');
    await tab.waitFor("app.live.state === 'paused' && app.live.lostMessage !== null");
    const { live } = await tab.probe<LiveProbe>();
    expect(live.lostMessage, tab.context()).toMatch(/^(LOST PAGE|COPY MISMATCH): slot \d+ offset \d+ \(gfn 0x[0-9a-f]+\).*seed 5/);
    expect(live.iteration).toBe(1);
    expect(await tab.page.isVisible('#live-alert')).toBe(true);
    expect(await tab.page.textContent('#live-alert')).toContain(live.lostMessage!);
    await tab.waitFor('app.live.heat.lost > 0');
    const counts = await tab.shot('live-lost', ['heatmap']);
    expect(counts['heatmap'], tab.context()).toBeGreaterThanOrEqual(2);
    await tab.page.click('#btn-stop');
    await tab.waitFor("app.live.summary !== null");
    expect((await tab.probe<LiveProbe>()).live.summary?.ok).toBe(false);
    await tab.finish();
  });
});

describeApp('the browser app: SDK example harvesters', (open) => {
  it('runs the QEMU-style reaper example clean, and pauses on the lost page of the entry-skipping one', async () => {
    const good = await open('?view=live&log=ring&harvester=sdk-qemu-reaper&iterations=4&intervalMs=150&seed=3');
    expect(await good.page.inputValue('#cfg-harvester')).toBe('sdk-qemu-reaper');
    await good.page.click('#btn-start');
    await good.waitFor('app.live.summary !== null');
    expect((await good.probe<LiveProbe>()).live.summary, good.context()).toMatchObject({ ok: true, lostPages: 0, iterations: 4, error: null });
    await good.finish();
    const buggy = await open('?view=live&log=ring&harvester=sdk-skips-entry&iterations=6&intervalMs=150&seed=5');
    await buggy.page.click('#btn-start');
    await buggy.waitFor("app.live.state === 'paused' && app.live.lostMessage !== null");
    expect((await buggy.probe<LiveProbe>()).live.lostMessage, buggy.context()).toMatch(/^(LOST PAGE|COPY MISMATCH): slot \d+ offset \d+/);
    await buggy.page.click('#btn-stop');
    await buggy.waitFor('app.live.summary !== null');
    expect((await buggy.probe<LiveProbe>()).live.summary?.ok).toBe(false);
    await buggy.finish();
  });
});

describeApp('the browser app: a worker that dies', (open) => {
  it('reports the live run worker dying mid-run, and the page stays usable', async () => {
    const tab = await open('?view=live&iterations=200&intervalMs=200&seed=3');
    await tab.page.click('#btn-start');
    await tab.waitFor("app.live.iteration >= 1 && app.live.state === 'running'");
    const runWorker = tab.page.workers().find((w) => w.url().includes('run.worker'));
    expect(runWorker, tab.page.workers().map((w) => w.url()).join('\n')).toBeDefined();
    // An exception nobody catches ends the worker's script: the page sees its 'error' event.
    await runWorker!.evaluate(() => {
      setTimeout(() => {
        throw new Error('injected failure');
      }, 0);
    });
    await tab.waitFor("app.live.state === 'failed'", 30_000);
    expect(await tab.page.textContent('#live-alert')).toMatch(/the live run's worker died: .*injected failure/);
    // Usable: the controls are enabled again and a new run starts and finishes.
    expect(await tab.page.isEnabled('#btn-start')).toBe(true);
    await tab.page.fill('#cfg-iterations', '2');
    await tab.page.dispatchEvent('#cfg-iterations', 'change');
    await tab.page.click('#btn-start');
    await tab.waitFor('app.live.summary !== null && app.live.summary.ok');
    // The injected exception is itself a console error; it is the only one.
    expect(tab.log.errors.every((e) => e.includes('injected failure')), tab.context()).toBe(true);
    await tab.page.close();
  });
});
