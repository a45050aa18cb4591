/**
 * The app's stress campaign and live migration views in headless Chromium: a campaign of
 * controlled runs, and one of free runs, fill the outcome histogram (every run counted once,
 * none forbidden on a correct kernel), a mutant campaign stops at its first forbidden run, a migration converges
 * with the destination identical to the source, a migration under dirty-limit shows its vCPUs
 * throttled in the lanes; each view's screenshot has content.
 */
import { expect, it } from 'vitest';
import { describeApp } from './app-env.js';

interface ViewsProbe {
  stress: { runs: number; done: boolean; histogram: Record<string, number>; error: string | null };
  migration: { done: boolean; rounds: number; error: string | null; throttledSamples: number };
}

const FORBIDDEN = ['lost-page', 'copy-mismatch', 'wrong-value', 'unlogged-write', 'reset-mismatch', 'bad-entry', 'kernel-bug', 'kernel-warning', 'wedged-vcpu', 'deadlock', 'step-limit'];

describeApp('the browser app: stress campaign and migration', (open) => {
  it('runs a controlled campaign in the page and fills the outcome histogram', async () => {
    const tab = await open('?view=stress');
    await tab.page.fill('#st-runs', '60');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', 120_000);
    const { stress } = await tab.probe<ViewsProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.runs).toBe(60);
    expect(Object.values(stress.histogram).reduce((a, b) => a + b, 0), 'each run counted once').toBe(60);
    for (const k of FORBIDDEN) expect(stress.histogram[k] ?? 0, k).toBe(0);
    const colours = await tab.shot('stress', ['histogram']);
    expect(colours['histogram']).toBeGreaterThan(2);
    await tab.finish();
  });

  it('runs a free campaign on real worker threads in the page and fills the outcome histogram', async () => {
    const tab = await open('?view=stress');
    await tab.page.selectOption('#st-mode', 'free');
    expect(await tab.page.isDisabled('#st-wmm'), 'free runs have no memory model to choose').toBe(true);
    await tab.page.fill('#st-runs', '4');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', 240_000);
    const { stress } = await tab.probe<ViewsProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.runs).toBe(4);
    expect(Object.values(stress.histogram).reduce((a, b) => a + b, 0), 'each run counted once').toBe(4);
    for (const k of FORBIDDEN) expect(stress.histogram[k] ?? 0, k).toBe(0);
    expect(await tab.page.textContent('#st-status')).toMatch(/^4 free runs on real worker threads in [\d.]+ s: 0 forbidden\./);
    const colours = await tab.shot('stress-free', ['histogram']);
    expect(colours['histogram']).toBeGreaterThan(2);
    await tab.finish();
  });

  it('stops a mutant campaign at its first forbidden run', async () => {
    const tab = await open('?view=stress');
    await tab.page.fill('#st-runs', '300');
    await tab.page.fill('#st-seed', '3');
    await tab.page.selectOption('#st-mutant', 'dirty-before-writable');
    await tab.page.click('#st-start');
    await tab.waitFor('app.stress.done', 120_000);
    const { stress } = await tab.probe<ViewsProbe>();
    expect(stress.error, tab.context()).toBeNull();
    expect(stress.runs).toBeLessThan(300);
    expect(FORBIDDEN.reduce((n, k) => n + (stress.histogram[k] ?? 0), 0)).toBe(1);
    expect(await tab.page.textContent('#st-status')).toMatch(/First forbidden run: seed \d+/);
    await tab.finish();
  });

  it('migrates live and converges with the destination identical to the source', async () => {
    const tab = await open('?view=migration');
    await tab.page.fill('#mg-memory', '32');
    await tab.page.click('#mg-start');
    await tab.waitFor('app.migration.done', 120_000);
    const { migration } = await tab.probe<ViewsProbe>();
    expect(migration.error, tab.context()).toBeNull();
    expect(migration.rounds).toBeGreaterThanOrEqual(2);
    expect(await tab.page.textContent('#mg-status')).toMatch(/Converged after \d+ rounds.*identical to the source/);
    const colours = await tab.shot('migration', ['mg-chart']);
    expect(colours['mg-chart']).toBeGreaterThan(3);
    await tab.finish();
  });

  it('shows the source vCPUs throttled by dirty-limit in their lanes', async () => {
    const tab = await open('?view=migration');
    // As the dirty-limit integration test: 2 vCPUs re-dirtying most of 32 MiB each round over a
    // 50 MiB/s link never converge unthrottled; 256-entry rings fill often, and each fill sleeps.
    for (const [id, v] of [['#mg-vcpus', '2'], ['#mg-memory', '32'], ['#mg-ring', '256'], ['#mg-rate', '100'], ['#mg-bandwidth', '50'], ['#mg-downtime', '50'], ['#mg-limit', '1']] as const) {
      await tab.page.fill(id, v);
    }
    await tab.page.click('#mg-start');
    // Enough throttled samples that the throttled stretch of a lane is several pixels wide.
    await tab.waitFor('app.migration.throttledSamples >= 20 || app.migration.done', 120_000);
    // The throttled colour (palette.ts LANE_COLORS.throttled, #eab308) is on the lanes' canvas.
    const throttledPixels = await tab.page.evaluate(() => {
      const c = document.getElementById('mg-lanes') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === 0xea && d[i + 1] === 0xb3 && d[i + 2] === 0x08) n++;
      return n;
    });
    expect(throttledPixels, tab.context()).toBeGreaterThan(0);
    expect(await tab.page.textContent('#mg-throttle')).toMatch(/Throttled by dirty-limit in [\d.]+ %/);
    await tab.shot('migration-throttled', ['mg-lanes']);
    await tab.waitFor('app.migration.done', 120_000);
    const { migration } = await tab.probe<ViewsProbe>();
    expect(migration.error, tab.context()).toBeNull();
    expect(migration.throttledSamples).toBeGreaterThan(0);
    await tab.finish();
  });
});
