/**
 * The app's trace debugger in headless Chromium: a schedule file written by `dirtyring stress`
 * replays in the page to the trace hash the CLI's own replay gives, and can be stepped forward
 * and back (buttons and keys); a file that is not a schedule, a truncated one and one of another
 * format version each get a clear message, and the page stays usable; a file opens by URL.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { describeApp } from './app-env.js';

interface TraceProbe {
  trace: { loaded: string | null; error: string | null; traceHash: string | null; recordedHash: string | null; steps: number; position: number };
}

const CLI = join(process.cwd(), 'bin', 'dirtyring.js');
let schedule = '';
let cliHash = '';
let weakSchedule = '';
let weakHash = '';

/** The last JSON line of `dirtyring stress --replay FILE --json` (a failing replay exits 1). */
function cliReplayHash(file: string): string {
  const replay = spawnSync(process.execPath, [CLI, 'stress', '--replay', file, '--json'], { encoding: 'utf8', timeout: 120_000 });
  return (JSON.parse(replay.stdout.trim().split('\n').pop()!) as { traceHash: string }).traceHash;
}

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'dirtyring-app-trace-'));
  // A controlled campaign against a known bug writes the failing run's schedule (and its shrunk one).
  execFileSync(process.execPath, [CLI, 'stress', '--mode', 'controlled', '--mutant', 'dirty-before-writable', '--seed', '3', '--trace-dir', dir], { stdio: 'pipe', timeout: 120_000 });
  const name = readdirSync(dir).find((f) => f.endsWith('-shrunk.json'));
  if (!name) throw new Error(`the CLI wrote no shrunk schedule in ${dir}`);
  schedule = join(dir, name);
  cliHash = cliReplayHash(schedule);
  // An ordering bug only a weak memory model shows (arm64): its schedule carries read-from choices.
  const weakDir = mkdtempSync(join(tmpdir(), 'dirtyring-app-wmm-'));
  execFileSync(process.execPath, [CLI, 'stress', '--mode', 'controlled', '--mutant', 'fault-relaxed-writable', '--seed', '3', '--trace-dir', weakDir], { stdio: 'pipe', timeout: 120_000 });
  weakSchedule = join(weakDir, readdirSync(weakDir).find((f) => f.endsWith('-shrunk.json'))!);
  weakHash = cliReplayHash(weakSchedule);
}, 240_000);

describeApp('the browser app: trace debugger', (open) => {
  it('replays a CLI schedule file to the CLI trace hash and steps forward and back through it', async () => {
    const tab = await open('?view=trace');
    await tab.page.setInputFiles('#trace-file', schedule);
    await tab.waitFor('app.trace.traceHash !== null || app.trace.error !== null', 90_000);
    const { trace } = await tab.probe<TraceProbe>();
    expect(trace.error, tab.context()).toBeNull();
    expect(trace.traceHash, tab.context()).toBe(cliHash);
    expect(trace.recordedHash).toBe(cliHash);
    expect(await tab.page.textContent('#trace-hash')).toContain('identical');
    expect(trace.steps).toBeGreaterThan(5);
    await tab.page.click('#trace-forward');
    await tab.page.click('#trace-forward');
    expect((await tab.probe<TraceProbe>()).trace.position).toBe(2);
    await tab.page.click('#trace-back');
    expect((await tab.probe<TraceProbe>()).trace.position).toBe(1);
    await tab.page.keyboard.press('End');
    expect((await tab.probe<TraceProbe>()).trace.position).toBe(trace.steps);
    await tab.page.keyboard.press('ArrowLeft');
    expect((await tab.probe<TraceProbe>()).trace.position).toBe(trace.steps - 1);
    expect(await tab.page.locator('#trace-effect li').count()).toBeGreaterThan(0);
    expect(await tab.page.textContent('#view-trace')).toContain('Invariant broken at step');
    // The explanation's violation row leads to the step that broke the invariant.
    await tab.page.click('.explanation tr.violation button');
    expect(await tab.page.textContent('#trace-effect')).toMatch(/page \d+ written/);
    await tab.shot('trace', []);
    await tab.finish();
  });

  it('replays a weak-memory (arm64) schedule to the CLI hash and shows the missing ordering', async () => {
    const tab = await open('?view=trace');
    await tab.page.setInputFiles('#trace-file', weakSchedule);
    await tab.waitFor('app.trace.traceHash !== null || app.trace.error !== null', 90_000);
    const { trace } = await tab.probe<TraceProbe>();
    expect(trace.error, tab.context()).toBeNull();
    expect(trace.traceHash).toBe(weakHash);
    const text = await tab.page.textContent('#view-trace');
    expect(text).toContain('memory model arm64');
    expect(text).toContain('Missing orderings');
    await tab.page.click('.explanation tr.violation button');
    await tab.shot('trace-wmm', []);
    await tab.finish();
  });

  it('says what is wrong with a bad, truncated or incompatible file, and stays usable', async () => {
    const tab = await open('?view=trace');
    const dir = mkdtempSync(join(tmpdir(), 'dirtyring-app-bad-'));
    const text = readFileSync(schedule, 'utf8');
    const cases: [string, string, RegExp][] = [
      ['not-a-schedule.json', 'hello, world', /not a JSON schedule file/],
      ['truncated.json', text.slice(0, Math.floor(text.length / 2)), /not a JSON schedule file/],
      ['future.json', text.replace('"dirtyring-schedule/1"', '"dirtyring-schedule/9"'), /format must be dirtyring-schedule\/1/],
      ['bad-choices.json', JSON.stringify({ ...JSON.parse(text), choices: [99] }), /choices/],
    ];
    for (const [name, content, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, content);
      await tab.page.evaluate(() => ((window as unknown as { __dirtyringApp: TraceProbe }).__dirtyringApp.trace.error = null));
      await tab.page.setInputFiles('#trace-file', path);
      await tab.waitFor('app.trace.error !== null', 60_000);
      const { trace } = await tab.probe<TraceProbe>();
      expect(trace.error, name).toMatch(message);
      expect(await tab.page.isVisible('#trace-alert'), name).toBe(true);
    }
    await tab.shot('trace-error', []);
    // Still usable: the good file loads after the bad ones.
    await tab.page.setInputFiles('#trace-file', schedule);
    await tab.waitFor(`app.trace.traceHash === '${cliHash}'`, 90_000);
    expect(await tab.page.isVisible('#trace-alert')).toBe(false);
    await tab.finish();
  });

  it('opens a schedule file by URL (?view=trace&trace=URL)', async () => {
    mkdirSync('test-results/app', { recursive: true });
    writeFileSync('test-results/app/schedule.json', readFileSync(schedule));
    const tab = await open('?view=trace&trace=/test-results/app/schedule.json');
    await tab.waitFor(`app.trace.traceHash === '${cliHash}'`, 90_000);
    await tab.finish();
  });
});
