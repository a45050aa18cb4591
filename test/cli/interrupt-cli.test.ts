/**
 * Ctrl-C and SIGTERM: a stopped command ends the run (iteration, round) under way, prints what
 * it made marked as interrupted, writes the reports it was asked for, and exits 130 / 143.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliProcess } from '../helpers/cli-process.js';
import { lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-interrupt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Until the command shows it is working (it builds dist/ first when stale). */
const START_MS = 60_000;
/** The run under way gets 10 s to end (STOP_GRACE_MS), closing 5 s more: the exit must come within. */
const EXIT_MS = 20_000;

describe('an interrupted stress campaign', () => {
  it('SIGINT: partial outcome table, reports marked interrupted, exit 130', async () => {
    const report = join(dir, 'c.json');
    const junit = join(dir, 'c.xml');
    const p = new CliProcess(['stress', '--mode', 'controlled', '--runs', '1000000', '--seed', '9', '--json', '--report', report, '--junit', junit]);
    await p.waitFor(/controlled\/random: \d+\/1000000 runs/, START_MS);
    p.signal('SIGINT');
    const r = await p.exit(EXIT_MS);
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/outcome +class +runs/);
    expect(r.stderr).toMatch(/INTERRUPTED by SIGINT: partial results, \d+ runs, 0 forbidden, 0 errors \(seed 9\)/);
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ ok: false, interrupted: 'SIGINT', forbidden: 0 });
    const rep = JSON.parse(readFileSync(report, 'utf8')) as { ok: boolean; interrupted: string; campaigns: { runs: number; interrupted: boolean; records: unknown[] }[] };
    expect(rep.ok).toBe(false);
    expect(rep.interrupted).toBe('SIGINT');
    expect(rep.campaigns[0]!.interrupted).toBe(true);
    expect(rep.campaigns[0]!.runs).toBeGreaterThan(0);
    expect(rep.campaigns[0]!.records).toHaveLength(rep.campaigns[0]!.runs);
    expect(s['runs']).toBe(rep.campaigns[0]!.runs);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<error type="interrupted" message="SIGINT stopped the campaign after');
    expect(xml).toContain(`tests="${rep.campaigns[0]!.runs + 1}" failures="0" errors="1"`);
  }, timeoutAbove(START_MS, EXIT_MS));

  it('SIGTERM during a free-running mutant campaign: exit 143, the campaigns not started are not run', async () => {
    const report = join(dir, 'm.json');
    const p = new CliProcess(['stress', '--mode', 'free', '--mutant', 'all', '--runs', '100000', '--seed', '4', '--report', report]);
    await p.waitFor(/free [a-z-]+: \d+\/100000 runs/, START_MS);
    p.signal('SIGTERM');
    const r = await p.exit(EXIT_MS);
    expect(r.status, r.stderr).toBe(143);
    expect(r.stdout).toMatch(/INTERRUPTED by SIGTERM: partial results, \d+ runs/);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as { interrupted: string; campaigns: unknown[]; mutants: unknown[] };
    expect(rep.interrupted).toBe('SIGTERM');
    expect(rep.campaigns.length).toBeLessThan(20);
  }, timeoutAbove(START_MS, EXIT_MS));

  it('SIGINT during --matrix: the cells done, marked interrupted, exit 130', async () => {
    const p = new CliProcess(['stress', '--matrix', '--runs', '100000', '--seed', '1', '--json']);
    await p.waitFor(/dirtyring stress --matrix: /, START_MS);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    p.signal('SIGINT');
    const r = await p.exit(EXIT_MS);
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/INTERRUPTED by SIGINT: \d+ cells done/);
    expect(lastJson(r.stdout)).toMatchObject({ ok: false, interrupted: 'SIGINT', seed: 1 });
  }, timeoutAbove(START_MS, EXIT_MS));
});

describe('an interrupted run and migration', () => {
  it('run, SIGINT: the iterations made, marked interrupted, exit 130', async () => {
    const p = new CliProcess(['run', '--iterations', '100000', '--seed', '3', '--json']);
    await p.waitFor(/iteration +2:/, START_MS);
    p.signal('SIGINT');
    const r = await p.exit(EXIT_MS);
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/INTERRUPTED after \d+ iteration\(s\): partial results, 0 lost pages/);
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ ok: false, interrupted: true, lostPages: 0 });
    expect(s['iterations']).toBeGreaterThanOrEqual(2);
  }, timeoutAbove(START_MS, EXIT_MS));

  it('migrate, SIGTERM during the bulk round: cancelled, not verified, exit 143', async () => {
    const p = new CliProcess(['migrate', '--memory', '256MiB', '--bandwidth-mibs', '20', '--seed', '2', '--json']);
    await p.waitFor(/dirtyring migrate: /, START_MS);
    // Into the bulk pass (256 MiB at 20 MiB/s takes over 10 s).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    p.signal('SIGTERM');
    const r = await p.exit(EXIT_MS);
    expect(r.status, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/INTERRUPTED after 1 round\(s\): migration cancelled/);
    expect(lastJson(r.stdout)).toMatchObject({ ok: false, interrupted: true, verified: false });
  }, timeoutAbove(START_MS, EXIT_MS));
});
