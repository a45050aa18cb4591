/**
 * The `dirtyring stress` contract: bad input exits 2 naming the parameter and the errno; a
 * campaign prints an outcome table and the JSON summary; reports hold every run; a mutant
 * campaign prints a failing schedule that `--replay` reproduces exactly.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { badInputTests, cliWithin, lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-stress-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLI_MS = 120_000;
const dirtyring = cliWithin(CLI_MS);

describe('dirtyring stress: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'stress',
    [
      [['--runs', '0'], '--runs 0: EINVAL'],
      [['--runs', 'many'], '--runs many: EINVAL'],
      [['--mode', 'chaos'], '--mode chaos: EINVAL'],
      [['--strategy', 'bfs'], '--strategy bfs: EINVAL'],
      [['--mode', 'free', '--strategy', 'pct'], '--strategy pct: EINVAL, scheduling strategies need --mode controlled'],
      [['--shard', '3/2'], '--shard 3/2: EINVAL'],
      [['--mode', 'controlled', '--strategy', 'dfs', '--shard', '1/2'], '--shard 1/2: EINVAL'],
      [['--mutant', 'off-by-one'], '--mutant off-by-one: EINVAL, unknown mutant'],
      [['--mutant', 'legacy-get-no-protect', '--log', 'ring'], '--log ring: EINVAL, mutant legacy-get-no-protect is only exposed with --log bitmap'],
      [['--time-budget', 'soon'], '--time-budget soon: EINVAL'],
      [['--log', 'pml'], '--log pml: EINVAL'],
      [['--check-determinism'], '--check-determinism on: EINVAL'],
      [['--replay', join(dir, 'missing.json')], 'ENOENT'],
      // A replay takes its run from the trace file: campaign options would be silently ignored.
      [['--replay', 'x.json', '--seed', '7'], '--seed 7: EINVAL, not used with --replay'],
      [['--replay', 'x.json', '--runs', '10'], '--runs 10: EINVAL, not used with --replay'],
      [['--replay', 'x.json', '--mutant', 'no-tlb-flush'], '--mutant no-tlb-flush: EINVAL, not used with --replay'],
      [['--replay', 'x.json', '--mode', 'free'], '--mode free: EINVAL, not used with --replay'],
      [['--replay', 'x.json', '--report', 'r.json'], '--report r.json: EINVAL, not used with --replay'],
      [['--replay', 'x.json', '--check-determinism'], '--check-determinism on: EINVAL, not used with --replay'],
      [['--trace'], '--trace on: EINVAL, --trace needs --replay'],
      [['--coverage-guided'], '--coverage-guided on: EINVAL, it steers the scenarios of controlled random or pct campaigns'],
      [['--mode', 'controlled', '--strategy', 'dfs', '--coverage-guided'], '--coverage-guided on: EINVAL'],
      [['--mutant', 'no-tlb-flush', '--min-coverage'], '--min-coverage on: EINVAL, mutant campaigns stop at their first catch'],
      [['--replay', 'x.json', '--min-coverage'], '--min-coverage on: EINVAL, not used with --replay'],
      [['--memory-model', 'power'], '--memory-model power: EINVAL, must be one of sc, x86, arm64'],
      [['--mode', 'free', '--memory-model', 'arm64'], "--memory-model arm64: EINVAL, free-running threads run on the real hardware's memory model"],
      [['--mutant', 'push-no-wmb', '--memory-model', 'x86'], '--memory-model x86: EINVAL, mutant push-no-wmb is only exposed under --memory-model arm64'],
      [['--mode', 'controlled', '--wmm-history', '1'], '--wmm-history 1: EINVAL, must be between 2 and 64'],
      [['--mode', 'controlled', '--stale-rate', '1.5'], '--stale-rate 1.5: EINVAL'],
      [['--mode', 'controlled', '--ring-cap', 'ring-2'], '--ring-cap ring-2: EINVAL, must be one of ring, ring-acqrel'],
      [['--mode', 'controlled', '--resetter', 'thread', '--log', 'bitmap'], '--resetter thread: EINVAL, needs --log ring'],
      [['--matrix', '--mode', 'free'], '--mode free: EINVAL, not used with --matrix'],
      [['--replay', 'x.json', '--ring-cap', 'ring'], '--ring-cap ring: EINVAL, not used with --replay'],
      [['--self-reap', 'yes'], '--self-reap yes: EINVAL, must be one of on, off'],
      [['--self-reap', 'on', '--log', 'bitmap'], '--self-reap on: EINVAL, needs --log ring'],
      [['--self-reap', 'on', '--mode', 'controlled'], '--self-reap on: EINVAL, free runs only: controlled runs model the hand-off design'],
      [['--matrix', '--self-reap', 'off'], '--self-reap off: EINVAL, not used with --matrix'],
      [['--replay', 'x.json', '--self-reap', 'on'], '--self-reap on: EINVAL, not used with --replay'],
      [['--memory', '1GiB', '--mode', 'controlled'], '--memory 1GiB: EINVAL, free runs only: controlled scenarios have guests of their own shapes'],
      [['--memory', 'lots'], '--memory lots: EINVAL, expected a size like 64MiB, 1GiB or 4096'],
      [['--memory', '64MiB,1536KiB'], "--memory 1536KiB: EINVAL, a free run's guest is a whole number of MiB, at least 1MiB"],
      [['--memory', '2GiB'], '--memory 2GiB: EINVAL, at most 2047MiB: a free run may put its whole guest in one memslot'],
      [['--memory', '1GiB', '--mutant', 'no-tlb-flush'], '--memory 1GiB: EINVAL, not used with --mutant'],
      [['--matrix', '--memory', '1GiB'], '--memory 1GiB: EINVAL, not used with --matrix'],
      [['--replay', 'x.json', '--memory', '1GiB'], '--memory 1GiB: EINVAL, not used with --replay'],
      // A campaign (or a shard of one) that would make no run is refused, not reported OK.
      [['--shard', '2/3', '--runs', '1'], '--shard 2/3: EINVAL, shard 2 of --runs 1 has no run'],
      [['--mutant', 'no-tlb-flush', '--mode', 'controlled', '--shard', '31/40'], '--shard 31/40: EINVAL, shard 31 of a mutant campaign of 30 runs has no run'],
      [['--shard', '1/99999999999999999999'], '--shard 1/99999999999999999999: EINVAL, need 1 <= n <= 100000 shards'],
      [['--shard', '0/0'], '--shard 0/0: EINVAL'],
      [['--runs', '-3'], '--runs -3: EINVAL'],
      [['--preset', 'marathon'], '--preset marathon: EINVAL, must be one of soak'],
      [['--preset', 'soak', '--mode', 'free'], '--mode free: EINVAL, not used with --preset soak (it runs 10200 runs: 3000 controlled ring'],
      [['--preset', 'soak', '--log', 'ring'], '--log ring: EINVAL, not used with --preset soak'],
      // Output paths are checked before the first run, not when the campaign ends.
      [['--runs', '1', '--junit', '/proc/version'], '--junit /proc/version: EACCES, the file is read-only'],
      [['--runs', '1', '--report', dir], `--report ${dir}: EISDIR, is a directory`],
      [['--runs', '1', '--trace-dir', '/dev/null/x'], '--trace-dir /dev/null/x: ENOTDIR'],
      [['--runs', '1', '--report', '/dev/null/r.json'], '--report /dev/null/r.json: ENOTDIR'],
      [['--runs', '1', '--junit', join(dir, 'same.json'), '--report', join(dir, 'same.json')], 'EINVAL, the same file as --report'],
    ],
    CLI_MS,
  );
});

describe('dirtyring stress campaigns', () => {
  it('a controlled campaign: outcome table, JSON summary, a JSON report of every run and JUnit XML', () => {
    const report = join(dir, 'c.json');
    const junit = join(dir, 'c.xml');
    const r = dirtyring('stress', '--mode', 'controlled', '--runs', '40', '--seed', '5', '--json', '--report', report, '--junit', junit);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/outcome +class +runs/);
    expect(r.stderr).toContain('OK: 40 runs, 0 forbidden, 0 errors (seed 5)');
    expect(r.stderr).toMatch(/coverage \(controlled\): \d+\/35 edge states reached in 40 runs/);
    expect(r.stderr).toMatch(/ring +ring\.push\.first-entry +\d+ +\d+\.\d%/);
    expect(r.stderr).toContain('n/a in controlled mode: page-track.tracked-store, page-track.ring-full-exit — the controlled scheduler does not model page write-tracking');
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ ok: true, seed: 5, runs: 40, forbidden: 0, error: 0, modes: ['controlled'], strategy: 'random' });
    const cov = (s['campaigns'] as { coverage: { reached: number; applicable: number; unreached: string[]; runsPerState: Record<string, unknown> } }[])[0]!.coverage;
    expect(cov.applicable).toBe(35);
    expect(cov.reached + cov.unreached.length).toBe(35);
    expect(cov.runsPerState['page-track.tracked-store']).toBe('n/a');
    expect(cov.runsPerState['ring.push.first-entry']).toBeGreaterThan(0);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as {
      campaigns: { records: { seed: number; config: string; outcome: string; coverage: Record<string, number> }[]; coverage: { rows: { id: string; firstRun: number | null }[] } }[];
    };
    const records = rep.campaigns[0]!.records;
    expect(rep.campaigns[0]!.coverage.rows.find((x) => x.id === 'ring.push.first-entry')!.firstRun).toBeGreaterThan(0);
    expect(records.some((x) => (x.coverage['ring.push.first-entry'] ?? 0) > 0)).toBe(true);
    expect(records.map((x) => x.seed)).toEqual(Array.from({ length: 40 }, (_, i) => 5 + i));
    for (const x of records) {
      expect(x.config).toBeTruthy();
      expect(x.outcome).toBeTruthy();
    }
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/^<\?xml/);
    expect(xml.match(/<testcase /g)).toHaveLength(40);
    expect(xml).toContain('failures="0"');
  }, timeoutAbove(CLI_MS));

  it('a free-running campaign with a shard and a time budget', () => {
    const r = dirtyring('stress', '--mode', 'free', '--runs', '6', '--shard', '2/3', '--seed', '40', '--time-budget', '60s', '--json');
    expect(r.status, r.stderr).toBe(0);
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ ok: true, runs: 2, forbidden: 0, modes: ['free'] });
  }, timeoutAbove(CLI_MS));

  it('--self-reap on|off fixes the design of every free ring run of the standard harvester', () => {
    for (const [value, tag] of [['on', '+self-reap'], ['off', '']] as const) {
      const report = join(dir, `self-reap-${value}.json`);
      const r = dirtyring('stress', '--mode', 'free', '--log', 'ring', '--self-reap', value, '--runs', '4', '--seed', '11', '--report', report, '--json');
      expect(r.status, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ ok: true, runs: 4, forbidden: 0 });
      const records = (JSON.parse(readFileSync(report, 'utf8')) as { campaigns: { records: { config: string }[] }[] }).campaigns[0]!.records;
      for (const x of records) if (x.config.startsWith('ring/standard')) expect(x.config.startsWith(`ring/standard${tag} `), x.config).toBe(true);
    }
  }, timeoutAbove(CLI_MS, CLI_MS));

  it('--preset soak: every mode in every log mode, then the totals (scaled down by --runs)', () => {
    const r = dirtyring('stress', '--preset', 'soak', '--runs', '3', '--seed', '2', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('dirtyring stress --preset: 18 runs: 3 controlled ring, 3 controlled bitmap, 3 controlled clear, 3 free ring, 3 free bitmap, 3 free clear, seed 2');
    for (const [mode, log] of [['controlled', 'ring'], ['controlled', 'bitmap'], ['controlled', 'clear'], ['free', 'ring'], ['free', 'bitmap'], ['free', 'clear']]) {
      expect(r.stderr).toMatch(new RegExp(`\\n${mode} +${log} +3 +\\d+ +\\d+ +0 +0 +\\d+ s\\n`));
    }
    expect(r.stderr).toMatch(/\ntotal +18 +\d+ +\d+ +0 +0 +\d+ s\n/);
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ ok: true, runs: 18, forbidden: 0, error: 0, modes: ['controlled', 'free'] });
    expect((s['campaigns'] as unknown[]).length).toBe(6);
  }, timeoutAbove(CLI_MS));

  it('a time budget shorter than one run still makes one run: OK always means runs were made', () => {
    const r = dirtyring('stress', '--mode', 'controlled', '--time-budget', '0.0001ms', '--seed', '3', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ ok: true, runs: 1 });
    expect(r.stderr).toContain('OK: 1 runs');
  }, timeoutAbove(CLI_MS));

  it('a mutant campaign prints the failing schedule, and --replay reproduces it exactly', () => {
    const traces = join(dir, 'traces');
    const r = dirtyring('stress', '--mode', 'controlled', '--mutant', 'no-tlb-flush', '--seed', '3', '--trace-dir', traces, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no-tlb-flush: caught at run \d+\/30/);
    expect(r.stderr).toMatch(/schedule \(\d+ steps\): /);
    expect(r.stderr).toMatch(/shrunk to /);
    const s = lastJson(r.stdout) as { ok: boolean; mutants: { caught: boolean; traceFile: string }[]; mutationScore: unknown };
    expect(s.ok).toBe(true);
    expect(s.mutationScore).toEqual({ controlled: { caught: 1, total: 1 } });
    const file = s.mutants[0]!.traceFile;
    expect(existsSync(file)).toBe(true);
    expect(r.stderr).toContain(`replay: npx dirtyring stress --replay ${file}`);
    // The failure reproduces (exit 1) with the identical trace.
    const replay = dirtyring('stress', '--replay', file, '--json');
    expect(replay.status, replay.stderr).toBe(1);
    const rs = lastJson(replay.stdout);
    expect(rs).toMatchObject({ ok: false, replay: true, identical: true, deterministic: true, cls: 'forbidden' });
    expect(replay.stderr).toContain('trace: identical to the recording');
    // An edited trace line, or a surplus choice, is refused before anything runs (exit 2).
    const recorded = JSON.parse(readFileSync(file, 'utf8')) as { trace: string[]; choices: number[] };
    const edited = join(dir, 'edited.json');
    writeFileSync(edited, JSON.stringify({ ...recorded, trace: recorded.trace.map((l, i) => (i === 3 ? l.replace(/(-?\d+)$/, (n) => String(Number(n) + 1)) : l)) }));
    const e = dirtyring('stress', '--replay', edited);
    expect(e.status, e.stderr).toBe(2);
    expect(e.stderr).toMatch(/trace …: EINVAL, the trace hashes to [0-9a-f]{8}, not to the recorded traceHash/);
    writeFileSync(edited, JSON.stringify({ ...recorded, choices: [...recorded.choices, ...recorded.trace.map(() => 0)] }));
    const surplus = dirtyring('stress', '--replay', edited);
    expect(surplus.status, surplus.stderr).toBe(2);
    expect(surplus.stderr).toMatch(/choices …: EINVAL, \d+ choices for \d+ trace steps: \d+ surplus choices that the recorded run never took/);
  }, timeoutAbove(CLI_MS, CLI_MS, CLI_MS, CLI_MS));

  it('--min-coverage exits 1 and lists the edge states no run reached', () => {
    const r = dirtyring('stress', '--mode', 'controlled', '--runs', '3', '--seed', '5', '--min-coverage', '--json');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/UNREACHED \(\d+\): .*clear\.chunk-first-page/);
    expect(r.stderr).toMatch(/FAILED: --min-coverage: edge states no run reached — controlled: .*memslots\.smm-record/);
    expect(lastJson(r.stdout)).toMatchObject({ ok: false, forbidden: 0, error: 0 });
  }, timeoutAbove(CLI_MS));

  it('--coverage-guided reaches every edge state within 150 runs, so --min-coverage passes', () => {
    const r = dirtyring('stress', '--mode', 'controlled', '--runs', '150', '--seed', '5', '--coverage-guided', '--min-coverage', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('coverage (controlled): 35/35 edge states reached in 150 runs');
    expect(r.stderr).toContain('OK: 150 runs, 0 forbidden, 0 errors, every edge state reached (seed 5)');
  }, timeoutAbove(CLI_MS));

  it('exits 1 when a mutant is not caught within the runs given', () => {
    // One run of a micro scenario is not enough to expose dirty-before-writable with this seed.
    const r = dirtyring('stress', '--mode', 'controlled', '--mutant', 'dirty-before-writable', '--runs', '1', '--seed', '1', '--json', '--no-shrink');
    const s = lastJson(r.stdout) as { ok: boolean; mutants: { caught: boolean }[] };
    expect(s.mutants[0]!.caught).toBe(false);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NOT CAUGHT/);
  }, timeoutAbove(CLI_MS));
});
